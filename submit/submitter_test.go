package submit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// newCluster returns a fake cluster with one registered virtual cluster and a submitter for it.
func newCluster(t *testing.T) (client.Client, *Submitter, *VirtualCluster) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	s := newTestSubmitter(c)
	vc, err := s.CreateVirtualCluster(context.Background(), "sales-analytics", "sales")
	if err != nil {
		t.Fatalf("CreateVirtualCluster: %v", err)
	}
	return c, s, vc
}

// objectsIn counts what a submission may leave behind in namespace, by kind.
func objectsIn(t *testing.T, c client.Client, namespace string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for kind, list := range map[string]client.ObjectList{
		"Pod": &corev1.PodList{}, "ConfigMap": &corev1.ConfigMapList{}, "Service": &corev1.ServiceList{},
		"ServiceAccount": &corev1.ServiceAccountList{}, "Role": &rbacv1.RoleList{}, "RoleBinding": &rbacv1.RoleBindingList{},
	} {
		if err := c.List(context.Background(), list, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(list); n > 0 {
			counts[kind] = n
		}
	}
	return counts
}

func TestStartJobRunCreatesSparkSubmitsObjects(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
	if err != nil {
		t.Fatalf("StartJobRun: %v", err)
	}
	wantID := jobRunID(vc.ID, "token-1")
	want := StartJobRunResponse{
		ID: wantID, Name: "sales-rollup", VirtualClusterID: vc.ID,
		ARN: "arn:aws:emr-containers:us-west-2:152324983118:/virtualclusters/" + vc.ID + "/jobruns/" + wantID,
	}
	if diff := cmp.Diff(want, sub.Response); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"Pod": 1, "ConfigMap": 2, "Service": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1}, objectsIn(t, c, "sales")); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	var pod corev1.Pod
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: "spark-" + wantID + "-driver"}, &pod); err != nil {
		t.Fatalf("driver pod: %v", err)
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: "spark-" + wantID + "-driver-svc"}, &svc); err != nil {
		t.Fatalf("driver service: %v", err)
	}
	if got := svc.OwnerReferences; len(got) != 1 || got[0].UID != pod.UID || got[0].Name != pod.Name {
		t.Errorf("service owner = %v, want the driver pod %s/%s", got, pod.Name, pod.UID)
	}
	run, err := s.DescribeJobRun(ctx, vc.ID, wantID)
	if err != nil {
		t.Fatalf("DescribeJobRun: %v", err)
	}
	if run.State != StateSubmitted {
		t.Errorf("state = %s, want SUBMITTED", run.State)
	}
}

func TestStartJobRunClientTokenIsIdempotent(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	first, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("nightly-2026-11-02").Obj())
	if err != nil {
		t.Fatal(err)
	}
	before := objectsIn(t, c, "sales")
	second, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("nightly-2026-11-02").Obj())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Existing || second.Response != first.Response {
		t.Errorf("second submission = %+v, want the first job run %+v marked existing", second, first.Response)
	}
	if diff := cmp.Diff(before, objectsIn(t, c, "sales")); diff != "" {
		t.Errorf("the second submission created objects (-before +after):\n%s", diff)
	}
	runs, err := s.ListJobRuns(ctx, ListJobRunsOptions{VirtualClusterID: vc.ID})
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListJobRuns = %d runs, %v; want 1", len(runs), err)
	}

	_, err = s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("nightly-2026-11-02").Params("--class com.acme.sales.Other").Obj())
	if !IsValidation(err) || !strings.Contains(err.Error(), "already used") {
		t.Errorf("same token, different request: err = %v, want a validation error", err)
	}
	if diff := cmp.Diff(before, objectsIn(t, c, "sales")); diff != "" {
		t.Errorf("the conflicting submission created objects (-before +after):\n%s", diff)
	}
}

func TestBadInputCreatesNothing(t *testing.T) {
	invalidSeed, err := os.ReadFile(filepath.Join("testdata", "ny-taxi-spot-invalid.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		body         string              // a raw StartJobRun body, decoded first
		req          *StartJobRunRequest // or a request
		wantErr      string
		wantNotFound bool
	}{
		"the seed's properties written as a list of pairs": {
			body:    string(invalidSeed),
			wantErr: `line 17, column 52: invalid character ':' after array element (a JSON list holds values, not "key": "value" pairs`,
		},
		"truncated JSON":             {body: `{"name": "x", "jobDriver": {`, wantErr: "unexpected end of input"},
		"misspelt field":             {body: `{"jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://b/a.py", "sparkSubmitParams": "--conf a=b"}}}`, wantErr: `unknown field "sparkSubmitParams"`},
		"number where a string goes": {body: `{"configurationOverrides": {"applicationConfiguration": [{"classification": "spark-defaults", "properties": {"spark.executor.instances": 4}}]}}`, wantErr: `line 1, column 139: "configurationOverrides.applicationConfiguration.properties" must be a string, not a JSON number`},
		"missing entryPoint":         {req: makeRequest().EntryPoint("").Obj(), wantErr: "jobDriver.sparkSubmitJobDriver.entryPoint is required"},
		"unknown virtual cluster":    {req: makeRequest().VC("0123456789abcdefghijklmno").Obj(), wantNotFound: true, wantErr: "virtual cluster 0123456789abcdefghijklmno not found"},
		"unparseable driver memory":  {req: makeRequest().Params("--class com.acme.sales.Rollup --driver-memory 4gigs").Obj(), wantErr: `spark.driver.memory="4gigs": unknown size unit "gigs"`},
		"unparseable executor memory in spark-defaults": {
			req:     makeRequest().Classification("spark-defaults", map[string]string{"spark.executor.memory": "12 GB"}).Obj(),
			wantErr: `spark.executor.memory="12 GB" is not a memory size`,
		},
		"--conf without =":              {req: makeRequest().Params("--class com.acme.sales.Rollup --conf spark.executor.instances").Obj(), wantErr: `--conf "spark.executor.instances" is not key=value`},
		"unknown classification":        {req: makeRequest().Classification("spark-default", map[string]string{"spark.a": "b"}).Obj(), wantErr: `unknown classification "spark-default"`},
		"JAR without --class":           {req: makeRequest().Params("--conf spark.executor.instances=2").Obj(), wantErr: "--class is required"},
		"unterminated quote":            {req: makeRequest().Params(`--class com.acme.sales.Rollup --conf "spark.a=b`).Obj(), wantErr: "unterminated"},
		"unknown spark-submit option":   {req: makeRequest().Params("--class com.acme.sales.Rollup --executor-mem 4g").Obj(), wantErr: `unknown spark-submit option "--executor-mem"`},
		"deploy mode is not the user's": {req: makeRequest().Params("--class com.acme.sales.Rollup --deploy-mode client").Obj(), wantErr: "--deploy-mode is not accepted"},
		"reserved Spark label":          {req: makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.driver.label.spark-role": "x"}).Obj(), wantErr: "reserved for Spark's bookkeeping"},
		"invalid label value":           {req: makeRequest().Classification("spark-defaults", map[string]string{"spark.kubernetes.driver.label.team": "sales & ops"}).Obj(), wantErr: `label team value "sales & ops"`},
		"not a role ARN": {req: func() *StartJobRunRequest {
			r := makeRequest().Obj()
			r.ExecutionRoleARN = "execution-role-arn"
			return r
		}(), wantErr: "is not an IAM role ARN"},
		"unknown release label": {req: func() *StartJobRunRequest { r := makeRequest().Obj(); r.ReleaseLabel = "emr-6.3.0"; return r }(), wantErr: `unknown releaseLabel "emr-6.3.0"`},
		"fractional memory":     {req: makeRequest().Params("--class com.acme.sales.Rollup --executor-memory 1.5g").Obj(), wantErr: "fractional values are not supported"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, s, vc := newCluster(t)
			req := tc.req
			var err error
			if tc.body != "" {
				req, err = DecodeStartJobRun(strings.NewReader(tc.body))
			}
			if err == nil {
				if req.VirtualClusterID == makeRequest().req.VirtualClusterID {
					req.VirtualClusterID = vc.ID
				}
				_, err = s.StartJobRun(context.Background(), req)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.wantErr)
			}
			if tc.wantNotFound != IsNotFound(err) || !tc.wantNotFound && !IsValidation(err) {
				t.Errorf("err = %T, want not found %v or else a validation error", err, tc.wantNotFound)
			}
			if got := objectsIn(t, c, "sales"); len(got) != 0 {
				t.Errorf("bad input left objects behind: %v", got)
			}
		})
	}
}

func TestJobRunLifecycle(t *testing.T) {
	running := corev1.ContainerStatus{Name: driverContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	exited := func(code int32, reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: driverContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, FinishedAt: metav1.NewTime(submittedAt.Add(10 * time.Minute)),
		}}}
	}
	cases := map[string]struct {
		phase       corev1.PodPhase
		status      *corev1.ContainerStatus
		wantState   State
		wantReason  string
		wantDetails string
	}{
		"driver running":          {phase: corev1.PodRunning, status: &running, wantState: StateRunning},
		"driver exited 0":         {phase: corev1.PodSucceeded, status: ptr(exited(0, "Completed")), wantState: StateCompleted},
		"driver exited 1":         {phase: corev1.PodFailed, status: ptr(exited(1, "Error")), wantState: StateFailed, wantReason: FailureUserError, wantDetails: "driver container spark-kubernetes-driver exited with code 1 (Error)"},
		"driver OOM killed":       {phase: corev1.PodFailed, status: ptr(exited(137, "OOMKilled")), wantState: StateFailed, wantReason: FailureUserError, wantDetails: "driver container spark-kubernetes-driver exited with code 137 (OOMKilled)"},
		"exit code before phase":  {phase: corev1.PodRunning, status: ptr(exited(0, "Completed")), wantState: StateCompleted},
		"image pull back-off":     {phase: corev1.PodPending, status: &corev1.ContainerStatus{Name: driverContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}, wantState: StateSubmitted, wantDetails: "driver container waiting: ImagePullBackOff"},
		"evicted without an exit": {phase: corev1.PodFailed, wantState: StateFailed, wantReason: FailureClusterUnavailable, wantDetails: "driver pod failed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, s, vc := newCluster(t)
			ctx := context.Background()
			sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
			if err != nil {
				t.Fatal(err)
			}
			setDriverStatus(t, c, "spark-"+sub.Response.ID+"-driver", tc.phase, tc.status)
			run, err := s.DescribeJobRun(ctx, "", sub.Response.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{string(run.State), run.FailureReason, run.StateDetails}
			if want := [3]string{string(tc.wantState), tc.wantReason, tc.wantDetails}; got != want {
				t.Errorf("state, reason, details = %q, want %q", got, want)
			}
			if run.State.Terminal() != (run.FinishedAt != nil) {
				t.Errorf("finishedAt = %v for state %s", run.FinishedAt, run.State)
			}
			listed, err := s.ListJobRuns(ctx, ListJobRunsOptions{States: []State{tc.wantState}})
			if err != nil || len(listed) != 1 || listed[0].ID != sub.Response.ID {
				t.Errorf("ListJobRuns(state %s) = %v, %v", tc.wantState, listed, err)
			}
		})
	}
}

func setDriverStatus(t *testing.T, c client.Client, name string, phase corev1.PodPhase, status *corev1.ContainerStatus) {
	t.Helper()
	var pod corev1.Pod
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: name}, &pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = phase
	if status != nil {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{*status}
	}
	if err := c.Status().Update(context.Background(), &pod); err != nil {
		t.Fatal(err)
	}
}

func TestCancelJobRun(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
	if err != nil {
		t.Fatal(err)
	}
	executor := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sales-rollup-4f1e-exec-1", Namespace: "sales", Labels: map[string]string{
		"spark-app-selector": appIDOf(t, c, sub.Response.ID), "spark-role": "executor",
	}}}
	if err := c.Create(ctx, executor); err != nil {
		t.Fatal(err)
	}
	setDriverStatus(t, c, "spark-"+sub.Response.ID+"-driver", corev1.PodRunning, &corev1.ContainerStatus{Name: driverContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})

	cancelled, err := s.CancelJobRun(ctx, vc.ID, sub.Response.ID)
	if err != nil {
		t.Fatalf("CancelJobRun: %v", err)
	}
	if cancelled.State != StateCancelled || cancelled.FinishedAt == nil {
		t.Errorf("state = %s (finished %v), want CANCELLED", cancelled.State, cancelled.FinishedAt)
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("sales")); err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left after cancel: %d, %v", len(pods.Items), err)
	}
	if _, err := s.CancelJobRun(ctx, vc.ID, sub.Response.ID); !IsValidation(err) {
		t.Errorf("cancelling a cancelled run: err = %v, want a validation error", err)
	}
	if _, err := s.DescribeJobRun(ctx, vc.ID, "0000000000000000000"); !IsNotFound(err) {
		t.Errorf("describing an unknown run: err = %v, want not found", err)
	}
}

func appIDOf(t *testing.T, c client.Client, id string) string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: recordName(id)}, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Annotations[annotationSparkAppID]
}

func TestVirtualClusters(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	if len(vc.ID) != virtualClusterIDLength || strings.Trim(vc.ID, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("id %q is not 25 characters of [0-9a-z]", vc.ID)
	}
	if _, err := s.CreateVirtualCluster(ctx, "again", "sales"); !IsValidation(err) {
		t.Errorf("second virtual cluster on one namespace: err = %v, want a validation error", err)
	}
	if _, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteVirtualCluster(ctx, vc.ID); !IsValidation(err) || !strings.Contains(err.Error(), "active job runs") {
		t.Errorf("deleting with an active run: err = %v, want a validation error", err)
	}
	if _, err := s.CancelJobRun(ctx, vc.ID, jobRunID(vc.ID, "token-1")); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteVirtualCluster(ctx, vc.ID)
	if err != nil || deleted.State != VirtualClusterTerminated {
		t.Fatalf("DeleteVirtualCluster = %v, %v", deleted, err)
	}
	if _, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("token-2").Obj()); !IsValidation(err) {
		t.Errorf("submitting to a terminated virtual cluster: err = %v, want a validation error", err)
	}
	running, err := s.ListVirtualClusters(ctx, VirtualClusterRunning)
	if err != nil || len(running) != 0 {
		t.Errorf("running virtual clusters = %v, %v; want none", running, err)
	}
	again, err := s.CreateVirtualCluster(ctx, "sales-analytics-v2", "sales")
	if err != nil {
		t.Fatalf("re-registering a terminated namespace: %v", err)
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: "sales"}, &ns); err != nil || ns.Labels[LabelVirtualClusterID] != again.ID {
		t.Errorf("namespace label = %v, %v; want %s", ns.Labels, err, again.ID)
	}
	got, err := s.DescribeVirtualCluster(ctx, again.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &VirtualCluster{
		ID: again.ID, Name: "sales-analytics-v2", State: VirtualClusterRunning, CreatedAt: submittedAt,
		ARN:               "arn:aws:emr-containers:us-west-2:152324983118:/virtualclusters/" + again.ID,
		ContainerProvider: ContainerProvider{ID: "sparkplace", Type: "EKS", Info: ContainerInfo{EKSInfo: EKSInfo{Namespace: "sales"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("virtual cluster (-want +got):\n%s", diff)
	}
}

func TestObserveJobStartTimeout(t *testing.T) {
	run := JobRun{ID: "x", State: StateSubmitted, CreatedAt: submittedAt}
	unschedulable := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/12 nodes are available: 12 Insufficient memory.",
	}}}}
	pulling := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: driverContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}},
	}}}}
	cases := map[string]struct {
		pod   *corev1.Pod
		after time.Duration
		want  observation
	}{
		"unschedulable within the timeout stays SUBMITTED": {
			pod: unschedulable, after: 14 * time.Minute,
			want: observation{state: StateSubmitted, details: "driver pod not scheduled: 0/12 nodes are available: 12 Insufficient memory."},
		},
		"unschedulable past the timeout: cluster unavailable": {
			pod: unschedulable, after: 16 * time.Minute,
			want: observation{state: StateFailed, reason: FailureClusterUnavailable, startTimedOut: true,
				details: "the driver did not start within job-start-timeout 15m0s (driver pod not scheduled: 0/12 nodes are available: 12 Insufficient memory.)"},
		},
		"image never pulled past the timeout: user error": {
			pod: pulling, after: 16 * time.Minute,
			want: observation{state: StateFailed, reason: FailureUserError, startTimedOut: true,
				details: "the driver did not start within job-start-timeout 15m0s (driver container waiting: ImagePullBackOff)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := observe(run, tc.pod, submittedAt.Add(tc.after), defaultJobStartTimeout)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(observation{})); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
		})
	}
}
