// Package sparksim builds Spark driver and executor pods exactly as Apache Spark's Kubernetes resource manager
// does (labels, names, containers, env, conf and local-dir volumes, owner references; see
// BasicDriverFeatureStep, BasicExecutorFeatureStep and LocalDirsFeatureStep), and simulates a running
// driver's ExecutorPodsAllocator: executor pods created one at a time, in batches of
// spark.kubernetes.allocation.batch.size every spark.kubernetes.allocation.batch.delay. The sparkplace webhook
// thus sees the traffic a real Spark driver sends, without a JVM: cluster and client mode (a notebook pod
// owning the executors, or no owner at all), and pod templates whose sidecars come before Spark's container:
// given, or read as a submitted driver reads its executor template (the ConfigMap mounted at
// /opt/spark/pod-template, read through the API; UseExecutorTemplate).
package sparksim
