// Package bench measures sparkplace where a Spark user waits on it: through a real kube-apiserver on the local
// control plane of e2e/framework, each figure beside a baseline measured in the same run, interleaved.
//
//   - Create latency and throughput of executor pods through sparkplace, a no-op webhook, a same-patch webhook
//     (it returns, precomputed, the very patch sparkplace would: the API server does the same work, the webhook
//     none) and no webhook, with the CPU the API server and the webhook spend per create (from /proc).
//   - A Spark-shaped burst: drivers over three zones, each allocating executors as Spark's allocator does
//     (e2e/sparksim).
//   - Scheduling rate through kube-scheduler with sparkplace's node affinity, with no zone rule, and with EMR
//     on EKS's pod-affinity recipe.
//   - Memory of the webhook and admission latency at cluster scale (thousands of nodes, tens of thousands of
//     other pods).
//
// Run writes a Markdown report and a PNG chart of the latency distributions. The baseline webhooks run in the
// test binary itself (ServeBaseline), as separate processes, so that their CPU is measured apart.
package bench
