package sparksim

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// submittedDriver is a driver as sparkplace's submitter (or spark-submit) creates it with an executor
// template: spark.properties and the template each in a ConfigMap the driver's container mounts.
func submittedDriver(props, template string) (*corev1.Pod, *fake.Clientset) {
	driver := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "spark-abc-driver", Namespace: "jobs", UID: "uid-1"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: DriverContainer, VolumeMounts: []corev1.VolumeMount{
				{Name: "pod-template-volume", MountPath: "/opt/spark/pod-template"},
				{Name: "spark-conf-volume-driver", MountPath: "/opt/spark/conf"},
			}}},
			Volumes: []corev1.Volume{
				{Name: "pod-template-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "spark-abc-driver-podspec-conf-map"},
					Items:                []corev1.KeyToPath{{Key: "podspec-configmap-key", Path: "pod-spec-template.yml"}},
				}}},
				confVolume("spark-conf-volume-driver", "spark-drv-abc-conf-map"),
			},
		},
	}
	c := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "spark-drv-abc-conf-map", Namespace: "jobs"}, Data: map[string]string{"spark.properties": props}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "spark-abc-driver-podspec-conf-map", Namespace: "jobs"}, Data: map[string]string{"podspec-configmap-key": template}},
	)
	return driver, c
}

func TestExecutorsFromTheDriversTemplate(t *testing.T) {
	const props = "#Java properties built from Kubernetes config map with name: spark-drv-abc-conf-map\n" +
		"spark.kubernetes.executor.podTemplateContainerName=spark-kubernetes-executor\n" +
		"spark.kubernetes.executor.podTemplateFile=/opt/spark/pod-template/pod-spec-template.yml\n" +
		"spark.master=k8s\\://https\\://kubernetes.default.svc\n"
	const template = `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: sales
    spark-role: not-spark-s # Spark's own labels win
spec:
  serviceAccountName: sales-executors
  volumes:
  - name: shipper-state
    emptyDir: {}
  containers:
  - name: fluent-bit
    image: fluent/fluent-bit:3.2.4
    volumeMounts:
    - name: shipper-state
      mountPath: /state
  - name: spark-kubernetes-executor
    env:
    - name: TEAM
      value: sales
    resources:
      limits:
        nvidia.com/gpu: "1"
`
	driver, c := submittedDriver(props, template)
	app := newTestApp()
	ok, err := app.UseExecutorTemplate(context.Background(), c, driver)
	if err != nil || !ok {
		t.Fatalf("UseExecutorTemplate = %v, %v", ok, err)
	}
	pod := app.ExecutorPod(driver, 3)
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"fluent-bit", ExecutorContainer}, names); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	spark := SparkContainer(pod)
	if spark.Image != app.Image || spark.Env[0].Name != "TEAM" || len(spark.Env) < 10 || spark.Resources.Limits.Name("nvidia.com/gpu", "").String() != "1" || spark.Resources.Requests.Cpu().String() != "1" {
		t.Errorf("Spark's container is not built on the template's: %+v", spark)
	}
	if pod.Labels["team"] != "sales" || pod.Labels[LabelRole] != RoleExecutor || pod.Labels[LabelExecID] != "3" {
		t.Errorf("labels = %v, want the template's with Spark's over them", pod.Labels)
	}
	if pod.Spec.ServiceAccountName != "sales-executors" || len(pod.Spec.Volumes) != 3 || pod.Spec.Volumes[0].Name != "shipper-state" {
		t.Errorf("spec = %+v, want the template's service account and volumes, then Spark's", pod.Spec)
	}
	if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != "uid-1" || pod.Name != app.ExecutorName(3) {
		t.Errorf("name %s owners %+v", pod.Name, pod.OwnerReferences)
	}
}

func TestNoExecutorTemplate(t *testing.T) {
	driver, c := submittedDriver("spark.master=k8s\\://https\\://kubernetes.default.svc\n", "")
	app := newTestApp()
	if ok, err := app.UseExecutorTemplate(context.Background(), c, driver); ok || err != nil {
		t.Fatalf("UseExecutorTemplate = %v, %v; want no template", ok, err)
	}
	if app.ExecutorTemplate != nil {
		t.Error("a template was set")
	}
}
