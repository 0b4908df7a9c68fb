package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/jobs/controller"
	"github.com/sparkplace/sparkplace/manifests"
	"github.com/sparkplace/sparkplace/submit"
)

// jobsNamespace stands in for sparkplace's own namespace for the job-run controller: it holds the controller's
// ServiceAccount and leader-election Lease (the certificate test installs and removes "sparkplace").
const (
	jobsNamespace = "sparkplace-jobs-e2e"
	controllerSA  = "sparkplace-controller"
)

var (
	jobsOnce sync.Once
	jobsErr  = errors.New("job-run install not attempted")
	// controllers are the running controller replicas, leader first as far as the tests know.
	controllers   []*framework.Process
	controllersMu sync.Mutex
	jobsScheme    = mustScheme()
)

func mustScheme() *runtime.Scheme {
	s, err := controller.Scheme()
	if err != nil {
		panic(err)
	}
	return s
}

// splitJobsObjects separates the job-run part of a rendered install (label sparkplace.io/part=jobs: CRDs,
// the controller, the API, their RBAC, the driver and tenant ClusterRoles) from the webhook's.
func splitJobsObjects(objs []*unstructured.Unstructured) (webhook, jobs []*unstructured.Unstructured) {
	for _, o := range objs {
		if o.GetLabels()[manifests.LabelPart] == manifests.PartJobs {
			jobs = append(jobs, o)
			continue
		}
		webhook = append(webhook, o)
	}
	return webhook, jobs
}

// requireJobs installs the CRDs and the controller's RBAC from the manifests and starts the controller as
// the manifests run it (its own ServiceAccount's token, leader election on), once for the suite.
func requireJobs(t *testing.T) {
	t.Helper()
	requireWebhook(t)
	jobsOnce.Do(func() { setupJobs(t) })
	if jobsErr != nil {
		t.Fatalf("job-run controller not running: %v", jobsErr)
	}
}

func setupJobs(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jobsErr = errors.New("setting up the job-run install failed (see the first test that asked for it)")
	objs, err := manifests.Render(manifests.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	_, all := splitJobsObjects(objs)
	// The controller and the API run as local processes with their ServiceAccounts' tokens (this cluster has
	// no container runtime), so their Deployments are left out.
	var jobs []*unstructured.Unstructured
	for _, o := range all {
		if o.GetKind() != "Deployment" {
			jobs = append(jobs, o)
		}
	}
	if _, err := cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: jobsNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, o := range jobs {
		if o.GetNamespace() != "" {
			o.SetNamespace(jobsNamespace)
		}
		if subjects, ok, _ := unstructured.NestedSlice(o.Object, "subjects"); ok {
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = jobsNamespace
			}
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
	}
	// CRDs first, then wait until they serve, then the rest.
	serverSideApply(ctx, t, jobs)
	c := adminClient(t)
	for {
		var list v1alpha1.JobRunList
		err := c.List(ctx, &list)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("JobRun CRD not served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	startController(ctx, t)
	jobsErr = nil
}

// startController starts one more controller replica with the controller ServiceAccount's token.
func startController(ctx context.Context, t *testing.T) *framework.Process {
	t.Helper()
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace")
	}
	kubeconfig := serviceAccountKubeconfig(ctx, t, jobsNamespace, controllerSA)
	controllersMu.Lock()
	defer controllersMu.Unlock()
	// A short lease so failover takes seconds.
	p, err := cp.StartProcess(fmt.Sprintf("sparkplace-controller-%d", len(controllers)), bin, []string{
		"controller", "--kubeconfig=" + kubeconfig, "--namespace=" + jobsNamespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms",
		"--region=us-east-1", "--account-id=152324983118",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	controllers = append(controllers, p)
	return p
}

func adminClient(t *testing.T) client.Client {
	t.Helper()
	return clientFor(t, cp.Config)
}

func clientFor(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: jobsScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// impersonating is a client acting as user, with the suite's admin credentials.
func impersonating(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return clientFor(t, cfg)
}

// tenantNamespace is a namespace the platform team opened to virtual clusters.
func tenantNamespace(t *testing.T) string {
	t.Helper()
	return newNamespace(t, map[string]string{v1alpha1.LabelVirtualClustersAllowed: "true"})
}

// bind grants user the ClusterRole in namespace.
func bind(t *testing.T, namespace, clusterRole, user string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterRole + "-" + strings.ReplaceAll(strings.Split(user, "@")[0], ".", "-"), Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := cp.Client.RbacV1().RoleBindings(namespace).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newSubmitter(c client.Client) *submit.Submitter {
	return submit.New(submit.Options{Client: c, Directory: c, Region: "us-east-1", AccountID: "152324983118", ProtectedNamespaces: []string{jobsNamespace}})
}

// sparkPi is the SparkPi request the tests submit.
func sparkPi(vcID, token string) *submit.StartJobRunRequest {
	return &submit.StartJobRunRequest{
		Name: "sparkpi", VirtualClusterID: vcID, ClientToken: token,
		ExecutionRoleARN: "arn:aws:iam::152324983118:role/emr-e2e-job-role",
		ReleaseLabel:     "spark-3.5.3",
		JobDriver: &submit.JobDriver{SparkSubmitJobDriver: &submit.SparkSubmitJobDriver{
			EntryPoint:            "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
			EntryPointArguments:   []string{"1000"},
			SparkSubmitParameters: "--class org.apache.spark.examples.SparkPi --conf spark.executor.instances=2 --driver-memory 2g",
		}},
	}
}

// TestJobRunsKeepHistory: a COMPLETED run stays COMPLETED after its driver pod is deleted; a read-only user
// lists and describes but cannot cancel; a virtual cluster on kube-system is refused; finished runs are
// deleted after their TTL, with their driver.
func TestJobRunsKeepHistory(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	ns := tenantNamespace(t)
	s := newSubmitter(adminClient(t))
	if _, err := s.CreateVirtualCluster(ctx, "system", "kube-system"); !submit.IsValidation(err) || !strings.Contains(err.Error(), "system namespace") {
		t.Errorf("virtual cluster on kube-system: %v, want refused", err)
	}
	vc, err := s.CreateVirtualCluster(ctx, "history", ns)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.StartJobRun(ctx, sparkPi(vc.ID, "completed"))
	if err != nil {
		t.Fatal(err)
	}
	driver := waitRunning(t, ns, "spark-"+sub.Response.ID+"-driver")
	waitJobRunState(t, s, vc.ID, sub.Response.ID, submit.StateRunning)
	exitSubmittedDriver(t, ns, driver.Pod.Name, 0)
	waitJobRunState(t, s, vc.ID, sub.Response.ID, submit.StateCompleted)
	if err := cp.Client.CoreV1().Pods(ns).Delete(ctx, driver.Pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitNoJobPods(t, ns, submit.LabelJobRunID+"="+sub.Response.ID)
	// A barrier: a later run of the same virtual cluster reaching SUBMITTED means the controller has
	// processed what came before it.
	later, err := s.StartJobRun(ctx, sparkPi(vc.ID, "barrier"))
	if err != nil {
		t.Fatal(err)
	}
	waitJobRunState(t, s, vc.ID, later.Response.ID, submit.StateRunning)

	viewer := "viewer@example.com"
	bind(t, ns, "sparkplace-job-viewer", viewer)
	// As the API does: the directory (virtual cluster id → namespace) is read with the server's identity.
	ro := submit.New(submit.Options{Client: impersonating(t, viewer, "system:authenticated"), Directory: adminClient(t), Region: "us-east-1", AccountID: "152324983118"})
	runs, err := ro.ListJobRuns(ctx, submit.ListJobRunsOptions{VirtualClusterID: vc.ID})
	if err != nil || len(runs) != 2 {
		t.Fatalf("read-only ListJobRuns = %d runs, %v; want 2", len(runs), err)
	}
	run, err := ro.DescribeJobRun(ctx, vc.ID, sub.Response.ID)
	if err != nil || run.State != submit.StateCompleted {
		t.Errorf("after its driver pod was deleted the run is %v (%v), want COMPLETED", run, err)
	}
	if _, err := ro.CancelJobRun(ctx, vc.ID, later.Response.ID); !apierrors.IsForbidden(err) {
		t.Errorf("read-only cancel: %v, want forbidden", err)
	}

	// TTL: the later run asks to be kept 1s after it finishes; it goes, and its driver pod with it.
	c := adminClient(t)
	r := &v1alpha1.JobRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: later.Response.ID}}
	if err := c.Patch(ctx, r, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"ttlSecondsAfterFinished":1}}`))); err != nil {
		t.Fatal(err)
	}
	exitSubmittedDriver(t, ns, "spark-"+later.Response.ID+"-driver", 0)
	deadline := time.Now().Add(time.Minute)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(r), r)
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("finished run with a 1s TTL still there after a minute: %v %+v", err, r.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	waitNoJobPods(t, ns, submit.LabelJobRunID+"="+later.Response.ID)
}

// TestCancelRacingSubmit cancels runs right after submitting them, so cancels land before, during and after
// the controller creates the driver: every run ends CANCELLED and no pod of any of them is left.
func TestCancelRacingSubmit(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	ns := tenantNamespace(t)
	s := newSubmitter(adminClient(t))
	vc, err := s.CreateVirtualCluster(ctx, "cancel-race", ns)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		sub, err := s.StartJobRun(ctx, sparkPi(vc.ID, fmt.Sprintf("race-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			// Every other run gets a head start of one status change.
			waitJobRunStateAtLeast(t, s, vc.ID, sub.Response.ID)
		}
		if _, err := s.CancelJobRun(ctx, vc.ID, sub.Response.ID); err != nil && !submit.IsValidation(err) {
			t.Fatal(err)
		}
		ids = append(ids, sub.Response.ID)
	}
	for _, id := range ids {
		waitJobRunState(t, s, vc.ID, id, submit.StateCancelled)
		pods, err := cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: submit.LabelJobRunID + "=" + id})
		if err != nil || len(pods.Items) != 0 {
			t.Errorf("run %s is CANCELLED with %d pods left (%v)", id, len(pods.Items), err)
		}
	}
}

// waitJobRunStateAtLeast waits until the controller has recorded any state for the run.
func waitJobRunStateAtLeast(t *testing.T, s *submit.Submitter, vcID, id string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		run, err := s.DescribeJobRun(context.Background(), vcID, id)
		if err != nil {
			t.Fatal(err)
		}
		if run.State != submit.StatePending || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestControllerFailover kills the leading controller while a run is RUNNING and another is being
// submitted; a standby takes over, and both runs converge with exactly one driver each.
func TestControllerFailover(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	ns := tenantNamespace(t)
	s := newSubmitter(adminClient(t))
	vc, err := s.CreateVirtualCluster(ctx, "failover", ns)
	if err != nil {
		t.Fatal(err)
	}
	standby := startController(ctx, t)
	first, err := s.StartJobRun(ctx, sparkPi(vc.ID, "before-failover"))
	if err != nil {
		t.Fatal(err)
	}
	driver := waitRunning(t, ns, "spark-"+first.Response.ID+"-driver")
	waitJobRunState(t, s, vc.ID, first.Response.ID, submit.StateRunning)

	// Kill every replica but the standby: no graceful lease release.
	controllersMu.Lock()
	var survivors []*framework.Process
	for _, p := range controllers {
		if p == standby {
			survivors = append(survivors, p)
			continue
		}
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.Exited()
	}
	controllers = survivors
	controllersMu.Unlock()

	exitSubmittedDriver(t, ns, driver.Pod.Name, 0)
	second, err := s.StartJobRun(ctx, sparkPi(vc.ID, "during-failover"))
	if err != nil {
		t.Fatal(err)
	}
	waitJobRunState(t, s, vc.ID, first.Response.ID, submit.StateCompleted)
	waitRunning(t, ns, "spark-"+second.Response.ID+"-driver")
	waitJobRunState(t, s, vc.ID, second.Response.ID, submit.StateRunning)
	for _, id := range []string{first.Response.ID, second.Response.ID} {
		drivers, err := cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: submit.LabelJobRunID + "=" + id + ",spark-role=driver"})
		if err != nil || len(drivers.Items) != 1 {
			t.Errorf("run %s has %d drivers (%v), want 1", id, len(drivers.Items), err)
		}
	}
	if _, err := s.CancelJobRun(ctx, vc.ID, second.Response.ID); err != nil {
		t.Fatal(err)
	}
	waitJobRunState(t, s, vc.ID, second.Response.ID, submit.StateCancelled)
	// Leave two replicas for the tests that follow.
	startController(ctx, t)
}

// TestJobsRBAC asks the API server what the controller's ServiceAccount and a tenant may do: the controller
// exactly what it needs (it runs with only these permissions in this suite), and a tenant cannot write a
// run's status, create virtual clusters or read Secrets.
func TestJobsRBAC(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	ns := tenantNamespace(t)
	tenant := "alice@example.com"
	bind(t, ns, "sparkplace-job-submitter", tenant)
	attr := func(verb, group, resource, sub, namespace, name string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub, Namespace: namespace, Name: name}
	}
	const sp, rbac = "sparkplace.io", "rbac.authorization.k8s.io"
	controllerUser := "system:serviceaccount:" + jobsNamespace + ":" + controllerSA
	controllerGroups := []string{"system:serviceaccounts", "system:serviceaccounts:" + jobsNamespace, "system:authenticated"}
	cases := map[string]struct {
		user   string
		groups []string
		attr   authorizationv1.ResourceAttributes
		want   bool
	}{
		"controller watches job runs":                {controllerUser, controllerGroups, attr("watch", sp, "jobruns", "", "", ""), true},
		"controller writes job-run status":           {controllerUser, controllerGroups, attr("update", sp, "jobruns", "status", ns, "x"), true},
		"controller deletes finished runs":           {controllerUser, controllerGroups, attr("delete", sp, "jobruns", "", ns, "x"), true},
		"controller creates drivers":                 {controllerUser, controllerGroups, attr("create", "", "pods", "", ns, ""), true},
		"controller binds the driver role":           {controllerUser, controllerGroups, attr("bind", rbac, "clusterroles", "", "", "sparkplace-spark-driver"), true},
		"controller renews its lease":                {controllerUser, controllerGroups, attr("update", "coordination.k8s.io", "leases", "", jobsNamespace, "sparkplace-jobs-controller"), true},
		"controller cannot change a run's request":   {controllerUser, controllerGroups, attr("update", sp, "jobruns", "", ns, "x"), false},
		"controller cannot bind cluster-admin":       {controllerUser, controllerGroups, attr("bind", rbac, "clusterroles", "", "", "cluster-admin"), false},
		"controller cannot create roles":             {controllerUser, controllerGroups, attr("create", rbac, "roles", "", ns, ""), false},
		"controller cannot read secrets":             {controllerUser, controllerGroups, attr("get", "", "secrets", "", ns, "x"), false},
		"controller cannot write virtual clusters":   {controllerUser, controllerGroups, attr("update", sp, "virtualclusters", "", ns, "x"), false},
		"controller cannot update pods":              {controllerUser, controllerGroups, attr("update", "", "pods", "", ns, "x"), false},
		"controller cannot impersonate":              {controllerUser, controllerGroups, attr("impersonate", "", "users", "", "", ""), false},
		"controller leases only in its namespace":    {controllerUser, controllerGroups, attr("update", "coordination.k8s.io", "leases", "", "kube-system", "x"), false},
		"tenant starts runs in its namespace":        {tenant, nil, attr("create", sp, "jobruns", "", ns, ""), true},
		"tenant cancels runs in its namespace":       {tenant, nil, attr("patch", sp, "jobruns", "", ns, "x"), true},
		"tenant cannot write job-run status":         {tenant, nil, attr("update", sp, "jobruns", "status", ns, "x"), false},
		"tenant cannot patch job-run status":         {tenant, nil, attr("patch", sp, "jobruns", "status", ns, "x"), false},
		"tenant cannot create virtual clusters":      {tenant, nil, attr("create", sp, "virtualclusters", "", ns, ""), false},
		"tenant cannot read other namespaces' runs":  {tenant, nil, attr("list", sp, "jobruns", "", "default", ""), false},
		"tenant cannot read secrets of its own":      {tenant, nil, attr("get", "", "secrets", "", ns, "x"), false},
		"tenant cannot create pods through the role": {tenant, nil, attr("create", "", "pods", "", ns, ""), false},
	}
	for name, tc := range cases {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: tc.user, Groups: tc.groups, ResourceAttributes: &tc.attr}}
		got, err := cp.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Status.Allowed != tc.want {
			t.Errorf("%s: allowed %v, want %v (%s)", name, got.Status.Allowed, tc.want, got.Status.Reason)
		}
	}
}
