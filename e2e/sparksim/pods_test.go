package sparksim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newTestApp() *App {
	a := NewApp("My Spark_App", "jobs")
	a.ID, a.ResourcePrefix, a.ConfigMapSuffix = "spark-00112233445566778899aabbccddeeff", "my-spark-app-0123456789abcdef", "cafe"
	return a
}

func TestPodLabels(t *testing.T) {
	driver := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "my-spark-app-0123456789abcdef-driver", UID: "uid-1"}}
	tests := map[string]struct {
		pod  func(*App) *corev1.Pod
		edit func(*App)
		want map[string]string
	}{
		"Spark 3.5 driver": {
			pod: (*App).DriverPod,
			want: map[string]string{LabelAppSelector: "spark-00112233445566778899aabbccddeeff", LabelRole: RoleDriver,
				LabelAppName: "my-spark-app", LabelVersion: "3.5.3"},
		},
		"Spark 3.5 executor with a profile": {
			pod:  func(a *App) *corev1.Pod { return a.ExecutorPod(driver, 7) },
			edit: func(a *App) { a.WithProfile("nvme") },
			want: map[string]string{LabelAppSelector: "spark-00112233445566778899aabbccddeeff", LabelRole: RoleExecutor,
				LabelAppName: "my-spark-app", LabelVersion: "3.5.3", LabelExecID: "7", LabelResourceProfileID: "0",
				LabelProfile: "nvme"},
		},
		"Spark 3.2 executor has no name or version label": {
			pod:  func(a *App) *corev1.Pod { return a.ExecutorPod(driver, 1) },
			edit: func(a *App) { a.SparkVersion = "" },
			want: map[string]string{LabelAppSelector: "spark-00112233445566778899aabbccddeeff", LabelRole: RoleExecutor,
				LabelExecID: "1", LabelResourceProfileID: "0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := newTestApp()
			if tc.edit != nil {
				tc.edit(a)
			}
			if diff := cmp.Diff(tc.want, tc.pod(a).Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExecutorPodShape checks what the webhook relies on: owner, Spark's container first, the local dir
// emptyDir mounted where SPARK_LOCAL_DIRS points, memory request = limit = memory + overhead.
func TestExecutorPodShape(t *testing.T) {
	driver := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "my-spark-app-0123456789abcdef-driver", UID: "uid-1"}}
	p := newTestApp().ExecutorPod(driver, 3)
	controller := true
	if diff := cmp.Diff([]metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: driver.Name, UID: "uid-1", Controller: &controller}}, p.OwnerReferences); diff != "" {
		t.Errorf("owner references (-want +got):\n%s", diff)
	}
	if p.Name != "my-spark-app-0123456789abcdef-exec-3" || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("name %q, restartPolicy %q", p.Name, p.Spec.RestartPolicy)
	}
	c := p.Spec.Containers[0]
	if c.Name != ExecutorContainer || !cmp.Equal(c.Args, []string{"executor"}) {
		t.Errorf("container %q args %v", c.Name, c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if env["SPARK_LOCAL_DIRS"] == "" || env["SPARK_LOCAL_DIRS"] != mounts["spark-local-dir-1"] {
		t.Errorf("SPARK_LOCAL_DIRS %q, spark-local-dir-1 mounted at %q", env["SPARK_LOCAL_DIRS"], mounts["spark-local-dir-1"])
	}
	if env["SPARK_EXECUTOR_ID"] != "3" || env["SPARK_DRIVER_URL"] != "spark://CoarseGrainedScheduler@my-spark-app-0123456789abcdef-driver-svc.jobs.svc:7078" {
		t.Errorf("env %v", env)
	}
	req, limit := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if req.String() != "2432Mi" || !req.Equal(limit) {
		t.Errorf("memory request %s limit %s, want 2432Mi both (2048 + 384 overhead)", req.String(), limit.String())
	}
	if p.Spec.Volumes[0].Name != "spark-local-dir-1" || p.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("volumes %+v, want spark-local-dir-1 emptyDir first", p.Spec.Volumes)
	}
}
