package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/scratch"
)

const podSecurityEnforce = "pod-security.kubernetes.io/enforce"

// TestNVMeUnderPodSecurity runs nvme drivers through the API server's PodSecurity admission. Without an
// alternative configured (the suite's webhook), baseline and restricted namespaces get sparkplace's denial
// naming their level; with a local-NVMe StorageClass configured (a second webhook, for these namespaces
// only), the same pods are admitted with generic ephemeral volumes, fsGroup and no root init container. A
// privileged namespace that warns at baseline shows that hostPath volumes are all baseline would refuse.
func TestNVMeUnderPodSecurity(t *testing.T) {
	main := requireWebhook(t)
	ctx := context.Background()
	configFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(configFile, []byte("nvme:\n  ephemeral:\n    storageClassName: local-nvme\n    size: 50Gi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const ephemeralWebhook = "nvme-ephemeral"
	w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
		Command:           main.Command(),
		Args:              []string{"--config", configFile},
		Name:              "sparkplace-" + ephemeralWebhook,
		WebhookName:       ephemeralWebhook + ".sparkplace.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{ownWebhookLabel: ephemeralWebhook}},
	})
	if err != nil {
		t.Fatalf("start the webhook with an ephemeral StorageClass: %v", err)
	}
	t.Cleanup(func() {
		_ = cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "sparkplace-"+ephemeralWebhook, metav1.DeleteOptions{})
		_ = w.Stop()
	})

	cases := map[string]struct {
		level      string
		configured bool
		wantDenied string // in the refusal; "" when admitted
	}{
		"baseline, nothing configured: denied by sparkplace naming the level": {
			level: "baseline", wantDenied: `namespace enforces Pod Security "baseline"`,
		},
		"restricted, nothing configured: denied by sparkplace naming the level": {
			level: "restricted", wantDenied: `namespace enforces Pod Security "restricted"`,
		},
		"baseline with a local-NVMe StorageClass: admitted with ephemeral volumes":    {level: "baseline", configured: true},
		"restricted with a local-NVMe StorageClass: admitted, no root init container": {level: "restricted", configured: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			labels := map[string]string{podSecurityEnforce: tc.level, sparksim.LabelProfile: "nvme"}
			if tc.configured {
				labels[ownWebhookLabel] = ephemeralWebhook
			}
			ns := newNamespace(t, labels)
			driver := restrictedPod(sparksim.NewApp("spark-pi", ns).DriverPod())
			created, err := cp.Client.CoreV1().Pods(ns).Create(ctx, driver, metav1.CreateOptions{})
			if tc.wantDenied != "" {
				if err == nil {
					t.Fatalf("driver admitted in a %s namespace without an alternative: volumes %+v", tc.level, created.Spec.Volumes)
				}
				want := strings.Replace(tc.wantDenied, "namespace enforces", "namespace "+ns+" enforces", 1)
				for _, s := range []string{"sparkplace nvme profile", want, "nvme.ephemeral.storageClassName"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("refusal %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "violates PodSecurity") {
					t.Errorf("refused by Pod Security, not by sparkplace: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("driver refused in a %s namespace with the ephemeral alternative: %v", tc.level, err)
			}
			for _, v := range created.Spec.Volumes {
				if v.HostPath != nil {
					t.Errorf("hostPath volume %s in a %s namespace", v.Name, tc.level)
				}
				if v.Name == "spark-local-dir-1" && (v.Ephemeral == nil || *v.Ephemeral.VolumeClaimTemplate.Spec.StorageClassName != "local-nvme") {
					t.Errorf("local dir %+v, want a generic ephemeral volume of local-nvme", v.VolumeSource)
				}
			}
			if len(created.Spec.InitContainers) > 0 {
				t.Errorf("init containers %v, want none", created.Spec.InitContainers)
			}
			if sc := created.Spec.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup != 185 {
				t.Errorf("pod securityContext %+v, want fsGroup 185 (Spark's group)", sc)
			}
			if created.Spec.NodeSelector[framework.LabelDisk] != "nvme" {
				t.Errorf("nodeSelector %v, want the NVMe nodes", created.Spec.NodeSelector)
			}
		})
	}

	t.Run("privileged namespace: hostPath, and nothing else baseline would refuse", func(t *testing.T) {
		ns := newNamespace(t, map[string]string{
			podSecurityEnforce: "privileged", "pod-security.kubernetes.io/warn": "baseline", sparksim.LabelProfile: "nvme",
		})
		warnings := &warningRecorder{}
		cfg := rest.CopyConfig(cp.Config)
		cfg.WarningHandler = warnings
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		created, err := client.CoreV1().Pods(ns).Create(ctx, sparksim.NewApp("spark-pi", ns).DriverPod(), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(created.Spec.InitContainers) != 1 || created.Spec.InitContainers[0].Name != "sparkplace-chown-local-dirs" {
			t.Fatalf("init containers %v, want sparkplace's", created.Spec.InitContainers)
		}
		got := warnings.all()
		if len(got) != 1 || !strings.Contains(got[0], `would violate PodSecurity "baseline:latest": hostPath volumes`) || strings.Contains(got[0], ";") {
			t.Errorf("Pod Security warnings %q, want one: hostPath volumes only", got)
		}
	})
}

// restrictedPod makes a Spark pod meet Pod Security restricted, as a pod template for such a namespace would.
func restrictedPod(p *corev1.Pod) *corev1.Pod {
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptrTo(true),
		RunAsUser:      ptrTo(int64(185)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptrTo(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
	}
	return p
}

func ptrTo[T any](v T) *T { return &v }

// warningRecorder keeps the API server's warnings.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningRecorder) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// TestNodeAgentSweep runs the node agent's sweep against the real API server, with a temp dir standing in
// for an NVMe node's root: pods bound to that node, some deleted, each with the directory its init container
// would have left. Only the deleted pods' directories go; a pod created during the sweep keeps its directory;
// a directory sparkplace did not make stays. Then the `sparkplace node-agent --once` binary does the same for
// one more deleted pod.
func TestNodeAgentSweep(t *testing.T) {
	main := requireWebhook(t)
	ctx := context.Background()
	ns := newNamespace(t, nil)
	nodes, err := cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: framework.LabelDisk + "=nvme"})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("no NVMe node: %v", err)
	}
	nodeName := nodes.Items[0].Name
	root := t.TempDir()

	// makePod binds a pod to the node and gives it the directory its init container leaves: the UID record
	// and a local dir with shuffle data.
	makePod := func(name string) *corev1.Pod {
		t.Helper()
		p, err := cp.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName:   nodeName,
				Containers: []corev1.Container{{Name: "executor", Image: "apache/spark:3.5.3"}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := placement.PodDir(root, ns, name)
		if err := os.MkdirAll(filepath.Join(dir, "spark-local-dir-1", "blockmgr-1"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, placement.PodUIDFile), []byte(string(p.UID)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "spark-local-dir-1", "blockmgr-1", "shuffle_0_1_0.data"), []byte("0123456789"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deletePod := func(name string) {
		t.Helper()
		if err := cp.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for {
			_, err := cp.Client.CoreV1().Pods(ns).Get(waitCtx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			select {
			case <-waitCtx.Done():
				t.Fatalf("pod %s not gone: %v", name, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	makePod("pi-exec-1") // lives
	makePod("pi-exec-2") // deleted
	makePod("pi-exec-3") // deleted
	deletePod("pi-exec-2")
	deletePod("pi-exec-3")
	// A pod deleted before its init container ran: the kubelet's empty local dir, no UID record.
	neverStarted := placement.PodDir(root, ns, "pi-exec-4")
	if err := os.MkdirAll(filepath.Join(neverStarted, "spark-local-dir-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not sparkplace's: left alone.
	foreign := filepath.Join(root, "blockmgr-2f0c8f7e", "0c")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}

	// No grace period: only what the API server says protects a live pod's directory.
	s := &scratch.Sweeper{
		Root: root, Node: nodeName, Pods: scratch.ClientPods{Client: cp.Client}, Metrics: scratch.NewMetrics(nil),
		Log: logr.Discard(), Now: time.Now,
		AfterList: func(context.Context) { makePod("pi-exec-5") }, // created during the sweep
	}
	res, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Removed)
	if diff := cmp.Diff([]string{ns + "/pi-exec-2", ns + "/pi-exec-3", ns + "/pi-exec-4"}, res.Removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for name, wantGone := range map[string]bool{"pi-exec-1": false, "pi-exec-2": true, "pi-exec-3": true, "pi-exec-4": true, "pi-exec-5": false} {
		_, err := os.Stat(placement.PodDir(root, ns, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != wantGone {
			t.Errorf("%s's directory gone: %v, want %v", name, gone, wantGone)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a directory sparkplace did not make was removed: %v", err)
	}
	if want := int64(2 * (10 + len("00000000-0000-0000-0000-000000000000\n"))); res.Bytes != want {
		t.Errorf("bytes reclaimed %d, want %d", res.Bytes, want)
	}

	// The subcommand, as the DaemonSet runs it.
	makePod("pi-exec-6")
	deletePod("pi-exec-6")
	cmd := exec.CommandContext(ctx, main.Command()[0], "node-agent", "--once", "--kubeconfig", cp.Kubeconfig,
		"--root", root, "--node-name", nodeName, "--grace-period", "0s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sparkplace node-agent --once: %v\n%s", err, out)
	}
	for name, wantGone := range map[string]bool{"pi-exec-1": false, "pi-exec-5": false, "pi-exec-6": true} {
		_, err := os.Stat(placement.PodDir(root, ns, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != wantGone {
			t.Errorf("after node-agent --once: %s's directory gone: %v, want %v", name, gone, wantGone)
		}
	}
}
