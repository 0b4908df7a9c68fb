// Command demo runs sparkplace on a local control plane, for `make demo` and `make demo-down`:
//
//	demo up      start etcd, kube-apiserver, controller-manager, scheduler, kwok nodes of an EKS-like fleet and
//	             the webhook (bin/sparkplace) under .demo/, run sample Spark applications through the Spark
//	             driver simulator, print where their pods landed, and leave everything running
//	demo status  print the placement table again
//	demo down    stop everything `demo up` started
//
// The processes outlive the command (their process groups are recorded in .demo/pids).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// namespace holds the sample applications.
const namespace = "spark-demo"

func main() {
	log.SetFlags(0)
	log.SetPrefix("demo: ")
	if len(os.Args) != 2 {
		log.Fatal("usage: demo up|status|down")
	}
	root, err := framework.ModuleRoot()
	if err != nil {
		log.Fatal(err)
	}
	dir := filepath.Join(root, ".demo")
	ctx := context.Background()
	switch os.Args[1] {
	case "up":
		err = up(ctx, root, dir)
	case "status":
		err = status(ctx, dir)
	case "down":
		if err = framework.StopPIDFile(dir); err == nil {
			log.Print("stopped")
		}
	default:
		err = fmt.Errorf("unknown command %q: want up, status or down", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

func up(ctx context.Context, root, dir string) (err error) {
	bin := filepath.Join(root, "bin", "sparkplace")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no webhook binary (make demo builds it): %w", err)
	}
	// A demo left running is replaced: a fresh cluster shows a clean table.
	if err := framework.StopPIDFile(dir); err != nil {
		return fmt.Errorf("stop the previous demo: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cp, err := framework.Start(ctx, framework.Options{Dir: dir, Detached: true, Logf: log.Printf})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, framework.StopPIDFile(dir))
		}
	}()
	if err := cp.CreateFleet(ctx, framework.DefaultFleet()); err != nil {
		return err
	}
	w, err := cp.StartWebhook(ctx, framework.WebhookOptions{Command: []string{bin, "webhook"}})
	if err != nil {
		return err
	}
	log.Printf("webhook serving %s (log %s)", w.URL(), w.Process().LogPath)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := cp.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	if err := waitDefaultServiceAccount(ctx, cp.Client); err != nil {
		return err
	}
	apps := []struct {
		app       *sparksim.App
		executors int
	}{
		{sparksim.NewApp("spark-pi", namespace), 4},                                                           // default profile: on-demand driver, spot executors
		{sparksim.NewApp("shuffle-heavy-etl", namespace).WithProfile("nvme").WithDriverZone("us-east-1b"), 3}, // NVMe local dirs; its user pins the driver's zone
		{sparksim.NewApp("nightly-report", namespace).WithProfile("fargate"), 1},                              // serverless
	}
	for _, a := range apps {
		if _, err := cp.Client.CoreV1().Pods(namespace).Create(ctx, a.app.DriverPod(), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("submit %s: %w", a.app.Name, err)
		}
		// Spark 3.5's allocation defaults: batches of 5, one every second.
		al := sparksim.Allocator{Client: cp.Client, App: a.app, BatchSize: 5, BatchDelay: time.Second}
		res, err := al.Run(ctx, a.executors)
		if err != nil {
			return fmt.Errorf("%s executors: %w", a.app.Name, err)
		}
		log.Printf("%s: driver and %d executors created", a.app.Name, len(res.Created))
	}
	if err := waitAllRunning(ctx, cp.Client); err != nil {
		return err
	}
	fmt.Println()
	if err := printTable(ctx, cp.Client); err != nil {
		return err
	}
	pki := filepath.Join(dir, "pki")
	fmt.Printf(`
The cluster stays up. Kubeconfig: %s
  KUBECONFIG=%s kubectl get pods -n %s -o wide      (if you have kubectl)
  curl -s --cacert %s --cert %s --key %s \
    %s/api/v1/namespaces/%s/pods
  bin/sparkplace-demo status      (this table again)
Logs: %s/*.log. Stop everything with: make demo-down
`, cp.Kubeconfig, cp.Kubeconfig, namespace,
		filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"),
		cp.Config.Host, namespace, dir)
	return nil
}

func status(ctx context.Context, dir string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return fmt.Errorf("no demo running? %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return printTable(ctx, client)
}

func waitDefaultServiceAccount(ctx context.Context, c kubernetes.Interface) error {
	for {
		if _, err := c.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s has no default ServiceAccount: %w", namespace, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitAllRunning(ctx context.Context, c kubernetes.Interface) error {
	for {
		list, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			running := 0
			for i := range list.Items {
				if sparksim.PodRunning(&list.Items[i]) {
					running++
				}
			}
			if running == len(list.Items) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the demo pods to run: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printTable prints pod → node → zone → capacity type → rules applied, drivers before their executors.
func printTable(ctx context.Context, c kubernetes.Interface) error {
	pods, err := c.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].Labels, items[j].Labels
		if a[sparksim.LabelAppName] != b[sparksim.LabelAppName] {
			return a[sparksim.LabelAppName] < b[sparksim.LabelAppName]
		}
		if a[sparksim.LabelRole] != b[sparksim.LabelRole] {
			return a[sparksim.LabelRole] == sparksim.RoleDriver
		}
		return len(items[i].Name) < len(items[j].Name) || len(items[i].Name) == len(items[j].Name) && items[i].Name < items[j].Name
	})
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tPROFILE\tNODE\tZONE\tCAPACITY\tRULES APPLIED")
	for _, p := range items {
		zone, capacity := "-", "-"
		if n := byName[p.Spec.NodeName]; n != nil {
			zone = n.Labels[framework.LabelZone]
			capacity = n.Labels[framework.LabelEKSCapacityType]
			if n.Labels[framework.LabelComputeType] == "fargate" {
				capacity = "FARGATE"
			}
		}
		profile := p.Labels[sparksim.LabelProfile]
		if profile == "" {
			profile = "(default)"
		}
		node := p.Spec.NodeName
		if node == "" {
			node = "(pending)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, profile, node, zone, capacity, rules(&p))
	}
	return tw.Flush()
}

// rules reads the rules from the placement annotation the webhook wrote.
func rules(p *corev1.Pod) string {
	raw, ok := p.Annotations[placement.AnnotationKey]
	if !ok {
		return "(not placed by sparkplace)"
	}
	var e placement.Explanation
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return "(unreadable annotation: " + err.Error() + ")"
	}
	return strings.Join(e.Rules, ", ")
}
