package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// placed is a pod as scheduled, with the node it runs on.
type placed struct {
	Pod  *corev1.Pod
	Node *corev1.Node
}

func (p placed) zone() string     { return p.Node.Labels[framework.LabelZone] }
func (p placed) capacity() string { return p.Node.Labels[framework.LabelEKSCapacityType] }
func (p placed) group() string    { return nodeGroup(p.Node) }

// rules decodes the rules of the pod's placement annotation; nil when it has none.
func (p placed) rules(t *testing.T) []string {
	t.Helper()
	raw, ok := p.Pod.Annotations[placement.AnnotationKey]
	if !ok {
		return nil
	}
	var e placement.Explanation
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		t.Fatalf("pod %s: annotation %s=%q: %v", p.Pod.Name, placement.AnnotationKey, raw, err)
	}
	return e.Rules
}

// runApp submits the app's driver, lets the simulated driver allocate executors, waits until every pod runs,
// and returns the driver and the executors as placed.
func runApp(t *testing.T, app *sparksim.App, executors int, alloc sparksim.Allocator) (placed, []placed) {
	t.Helper()
	ctx := context.Background()
	if _, err := cp.Client.CoreV1().Pods(app.Namespace).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create driver: %v", err)
	}
	alloc.Client, alloc.App = cp.Client, app
	res, err := alloc.Run(ctx, executors)
	if err != nil {
		t.Fatalf("allocate executors: %v", err)
	}
	if len(res.Failures) > 0 {
		t.Errorf("%d executor creates refused, first: %v", len(res.Failures), res.Failures[0])
	}
	driver := waitRunning(t, app.Namespace, app.DriverName())
	var execs []placed
	for _, p := range res.Created {
		execs = append(execs, waitRunning(t, app.Namespace, p.Name))
	}
	return driver, execs
}

// waitRunning waits until the pod runs and returns it with its node.
func waitRunning(t *testing.T, namespace, name string) placed {
	t.Helper()
	p, err := sparksim.WaitForPod(context.Background(), cp.Client, namespace, name, 3*time.Minute, sparksim.PodRunning)
	if err != nil {
		t.Fatal(err)
	}
	return placed{Pod: p, Node: getNode(t, p.Spec.NodeName)}
}

// waitAppRunning waits until n executors of the app run (listing, not one Get per pod: the scale test has
// hundreds), and returns them as placed.
func waitAppRunning(t *testing.T, app *sparksim.App, n int, timeout time.Duration) []placed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	selector := fmt.Sprintf("%s=%s,%s=%s", sparksim.LabelAppSelector, app.ID, sparksim.LabelRole, sparksim.RoleExecutor)
	for {
		list, err := cp.Client.CoreV1().Pods(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		running := 0
		if err == nil {
			for i := range list.Items {
				if sparksim.PodRunning(&list.Items[i]) {
					running++
				}
			}
			if running >= n {
				nodes := map[string]*corev1.Node{}
				var out []placed
				for i := range list.Items {
					p := &list.Items[i]
					if nodes[p.Spec.NodeName] == nil {
						nodes[p.Spec.NodeName] = getNode(t, p.Spec.NodeName)
					}
					out = append(out, placed{Pod: p, Node: nodes[p.Spec.NodeName]})
				}
				return out
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("app %s: %d of %d executors running after %s (last error %v)", app.ID, running, n, timeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
