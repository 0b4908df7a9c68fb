package sparksim

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestDefaultBatchSize(t *testing.T) {
	for version, want := range map[string]int{"": 5, "3.2.4": 5, "3.5.3": 5, "4.0.1": 10, "4.1.0": 10, "4.2.0": 20} {
		if got := DefaultBatchSize(version); got != want {
			t.Errorf("DefaultBatchSize(%q) = %d, want %d", version, got, want)
		}
	}
}

// cluster is a fake API server for the allocator: it records creates and lists, refuses the creates refuse
// names, and starts pods running unless pending says to keep them pending.
type cluster struct {
	*fake.Clientset
	mu      sync.Mutex
	log     []string
	refuse  map[string]bool
	pending bool
}

func newCluster(t *testing.T, app *App) *cluster {
	driver := app.DriverPod()
	driver.UID = "uid-driver"
	driver.Spec.NodeName, driver.Status.Phase = "node-1", corev1.PodRunning
	// NewSimpleClientset, not NewClientset: the latter's field-managed tracker loses pods that a reactor
	// changed on create (the allocator then never sees them).
	c := &cluster{Clientset: fake.NewSimpleClientset(driver), refuse: map[string]bool{}}
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.log = append(c.log, "create "+strings.TrimPrefix(pod.Name, app.ResourcePrefix+"-"))
		if c.refuse[pod.Name] {
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), pod.Name, errors.New("denied by webhook"))
		}
		if !c.pending {
			pod.Spec.NodeName, pod.Status.Phase = "node-2", corev1.PodRunning
		}
		return false, nil, nil
	})
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.log = append(c.log, "list")
		return false, nil, nil
	})
	return c
}

func (c *cluster) calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

func TestAllocatorRounds(t *testing.T) {
	cases := map[string]struct {
		version string
		n       int
		refuse  []int
		want    []string
	}{
		"Spark 3.5: rounds of 5, each after the previous was seen": {
			version: "3.5.3", n: 7,
			want: []string{"list", "create exec-1", "create exec-2", "create exec-3", "create exec-4", "create exec-5",
				"list", "create exec-6", "create exec-7", "list"},
		},
		"Spark 4.0: rounds of 10": {
			version: "4.0.1", n: 11,
			want: []string{"list", "create exec-1", "create exec-2", "create exec-3", "create exec-4", "create exec-5",
				"create exec-6", "create exec-7", "create exec-8", "create exec-9", "create exec-10",
				"list", "create exec-11", "list"},
		},
		"a refused create ends the round; its id is spent": {
			version: "3.5.3", n: 3, refuse: []int{2},
			want: []string{"list", "create exec-1", "create exec-2", "list", "create exec-3", "create exec-4", "list"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			app := newTestApp()
			app.SparkVersion = tc.version
			c := newCluster(t, app)
			for _, id := range tc.refuse {
				c.refuse[app.ExecutorName(id)] = true
			}
			al := Allocator{Client: c, App: app, BatchDelay: time.Millisecond}
			res, err := al.Run(context.Background(), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if len(res.Failures) != len(tc.refuse) || len(res.Created) != tc.n {
				t.Errorf("%d created, %d refused; want %d and %d", len(res.Created), len(res.Failures), tc.n, len(tc.refuse))
			}
		})
	}
}

// TestAllocatorReplacesDeletedPendingExecutors: an executor deleted while pending is replaced in the next
// round, as Spark's allocator does (a deleted pod is neither running nor pending).
func TestAllocatorReplacesDeletedPendingExecutors(t *testing.T) {
	app := newTestApp()
	c := newCluster(t, app)
	c.pending = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan *Result)
	go func() {
		res, _ := (&Allocator{Client: c, App: app, BatchDelay: 5 * time.Millisecond}).Run(ctx, 2)
		done <- res
	}()
	waitFor := func(what string, cond func([]string) bool) {
		for !cond(c.calls()) {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: calls %v", what, c.calls())
			case <-time.After(time.Millisecond):
			}
		}
	}
	// Delete only once the allocator listed both (Spark's watch sees every creation; a listing can miss a
	// pod deleted before it, and Spark then waits for the pod creation timeout).
	waitFor("two executors created and seen", func(calls []string) bool {
		return len(calls) > 3 && calls[2] == "create exec-2" && slices.Contains(calls[3:], "list")
	})
	if err := c.CoreV1().Pods(app.Namespace).Delete(ctx, app.ExecutorName(1), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a replacement", func(calls []string) bool { return len(filter(calls, "create")) == 3 })
	if got := filter(c.calls(), "create"); got[2] != "create exec-3" {
		t.Errorf("creates %v; want exec-3 to replace the deleted exec-1", got)
	}
	// Let them run: the allocator is done.
	c.mu.Lock()
	c.pending = false
	c.mu.Unlock()
	for _, id := range []int{2, 3} {
		p, err := c.CoreV1().Pods(app.Namespace).Get(ctx, app.ExecutorName(id), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.NodeName, p.Status.Phase = "node-2", corev1.PodRunning
		if _, err := c.CoreV1().Pods(app.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if res := <-done; len(res.Created) != 3 {
		t.Errorf("created %d executors, want 3", len(res.Created))
	}
}

func filter(calls []string, prefix string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func TestClientModeAndSidecars(t *testing.T) {
	app := newTestApp().InClientMode("").WithLogSidecar()
	p := app.ExecutorPod(nil, 1)
	if len(p.OwnerReferences) != 0 {
		t.Errorf("client-mode executor without a driver pod has owners %v", p.OwnerReferences)
	}
	if names := []string{p.Spec.Containers[0].Name, p.Spec.Containers[1].Name}; !cmp.Equal(names, []string{"log-shipper", ExecutorContainer}) {
		t.Errorf("containers %v; want the template's sidecar first, Spark's last", names)
	}
	if c := SparkContainer(p); c.Name != ExecutorContainer {
		t.Errorf("SparkContainer = %s", c.Name)
	}
	notebook := newTestApp().InClientMode("jupyter-alice")
	nb := notebook.NotebookPod(nil)
	nb.UID = "uid-nb"
	if _, ok := nb.Labels[LabelRole]; ok {
		t.Errorf("notebook pod carries %s", LabelRole)
	}
	if owners := notebook.ExecutorPod(nb, 1).OwnerReferences; len(owners) != 1 || owners[0].Name != "jupyter-alice" {
		t.Errorf("executor owners %v; want the notebook pod", owners)
	}
}
