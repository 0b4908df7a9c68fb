package submit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// openNamespace is a namespace the platform team opened to virtual clusters.
func openNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelVirtualClustersAllowed: "true"}}}
}

// newCluster returns a fake cluster with one registered virtual cluster on "sales" and a submitter for it.
func newCluster(t *testing.T, objs ...client.Object) (client.Client, *Submitter, *VirtualCluster) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithStatusSubresource(&v1alpha1.JobRun{}, &v1alpha1.VirtualCluster{}).
		WithObjects(append(objs, openNamespace("sales"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}})...).
		Build()
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
		"JobRun": &v1alpha1.JobRunList{}, "Pod": &corev1.PodList{}, "ConfigMap": &corev1.ConfigMapList{},
		"Service": &corev1.ServiceList{}, "ServiceAccount": &corev1.ServiceAccountList{},
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

func TestStartJobRunCreatesOnlyTheJobRun(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
	if err != nil {
		t.Fatalf("StartJobRun: %v", err)
	}
	wantID := JobRunID(vc.ID, "token-1")
	want := StartJobRunResponse{
		ID: wantID, Name: "sales-rollup", VirtualClusterID: vc.ID,
		ARN: "arn:aws:emr-containers:us-west-2:152324983118:/virtualclusters/" + vc.ID + "/jobruns/" + wantID,
	}
	if diff := cmp.Diff(want, sub.Response); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	// The controller creates the driver's objects; the submitter only the run.
	if diff := cmp.Diff(map[string]int{"JobRun": 1}, objectsIn(t, c, "sales")); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	var run v1alpha1.JobRun
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: wantID}, &run); err != nil {
		t.Fatal(err)
	}
	if run.Spec.Request.VirtualClusterID != vc.ID || run.Spec.Request.ClientToken != "token-1" || run.Labels[LabelVirtualClusterID] != vc.ID {
		t.Errorf("JobRun spec/labels = %+v %v", run.Spec.Request, run.Labels)
	}
	got, err := s.DescribeJobRun(ctx, vc.ID, wantID)
	if err != nil {
		t.Fatalf("DescribeJobRun: %v", err)
	}
	if got.State != StatePending {
		t.Errorf("state = %s, want PENDING", got.State)
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
	_, err = s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("nightly-2026-11-02").Params("--class com.acme.sales.Other").Obj())
	if !IsValidation(err) || !strings.Contains(err.Error(), "already used") {
		t.Errorf("same token, different request: err = %v, want a validation error", err)
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

// TestPolicyRefusals: a run asking for more than its virtual cluster allows is refused, naming the rule,
// and nothing is created.
func TestPolicyRefusals(t *testing.T) {
	conf := func(kv ...string) *StartJobRunRequest {
		props := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			props[kv[i]] = kv[i+1]
		}
		return makeRequest().Classification("spark-defaults", props).Obj()
	}
	strict := v1alpha1.VirtualClusterPolicy{
		AllowedImages:          []string{"123456789012.dkr.ecr.*.amazonaws.com/spark/*"},
		AllowedExecutionRoles:  []string{"arn:aws:iam::152324983118:role/sales-*"},
		AllowedServiceAccounts: []string{"spark-sales"},
	}
	cases := map[string]struct {
		policy   v1alpha1.VirtualClusterPolicy
		req      *StartJobRunRequest
		wantRule string // "" means accepted
	}{
		"default policy: the release image":         {req: makeRequest().Obj()},
		"default policy: another image":             {req: conf("spark.kubernetes.container.image", "evil/spark:latest"), wantRule: "allowedImages"},
		"default policy: another executor image":    {req: conf("spark.kubernetes.executor.container.image", "evil/spark:latest"), wantRule: "allowedImages"},
		"default policy: a named service account":   {req: conf("spark.kubernetes.authenticate.driver.serviceAccountName", "clusterrole-aggregation-controller"), wantRule: "allowedServiceAccounts"},
		"default policy: executors named elsewhere": {req: conf("spark.kubernetes.authenticate.executor.serviceAccountName", "default"), wantRule: "allowedServiceAccounts"},
		"default policy: hostPath of /":             {req: conf("spark.kubernetes.driver.volumes.hostPath.root.mount.path", "/host", "spark.kubernetes.driver.volumes.hostPath.root.options.path", "/"), wantRule: "allowedVolumeTypes"},
		"default policy: executor nfs":              {req: conf("spark.kubernetes.executor.volumes.nfs.data.mount.path", "/data"), wantRule: "allowedVolumeTypes"},
		"default policy: a claim":                   {req: conf("spark.kubernetes.driver.volumes.persistentVolumeClaim.data.mount.path", "/data", "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.options.claimName", "sales-data")},
		"strict policy: an allowed image": {policy: strict, req: func() *StartJobRunRequest {
			r := conf("spark.kubernetes.container.image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/spark/sales:3.5")
			r.ExecutionRoleARN = "arn:aws:iam::152324983118:role/sales-etl"
			return r
		}()},
		"strict policy: the release image": {policy: strict, req: func() *StartJobRunRequest {
			r := makeRequest().Obj()
			r.ExecutionRoleARN = "arn:aws:iam::152324983118:role/sales-etl"
			return r
		}(), wantRule: "allowedImages"},
		"strict policy: another team's role": {policy: strict, req: conf("spark.kubernetes.container.image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/spark/sales:3.5"), wantRule: "allowedExecutionRoles"},
		"strict policy: an allowed service account": {policy: strict, req: func() *StartJobRunRequest {
			r := conf("spark.kubernetes.container.image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/spark/sales:3.5", "spark.kubernetes.authenticate.driver.serviceAccountName", "spark-sales")
			r.ExecutionRoleARN = "arn:aws:iam::152324983118:role/sales-etl"
			return r
		}()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, s, vc := newCluster(t)
			ctx := context.Background()
			var obj v1alpha1.VirtualCluster
			if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: vc.ID}, &obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.Policy = tc.policy
			if err := c.Update(ctx, &obj); err != nil {
				t.Fatal(err)
			}
			tc.req.VirtualClusterID = vc.ID
			_, err := s.StartJobRun(ctx, tc.req)
			var perr *PolicyError
			switch {
			case tc.wantRule == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantRule == "":
				return
			case !errors.As(err, &perr) || perr.Rule != tc.wantRule || !IsValidation(err):
				t.Fatalf("err = %v, want a validation error naming rule %s", err, tc.wantRule)
			case !strings.Contains(err.Error(), tc.wantRule):
				t.Errorf("message %q does not name the rule", err)
			}
			if got := objectsIn(t, c, "sales"); len(got) != 0 {
				t.Errorf("a refused run left objects behind: %v", got)
			}
		})
	}
}

func TestCancelJobRun(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := s.CancelJobRun(ctx, vc.ID, sub.Response.ID)
	if err != nil {
		t.Fatalf("CancelJobRun: %v", err)
	}
	if cancelled.State != StateCancelPending {
		t.Errorf("state = %s, want CANCEL_PENDING until the controller has deleted the driver", cancelled.State)
	}
	var run v1alpha1.JobRun
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: sub.Response.ID}, &run); err != nil || !run.Spec.Cancel {
		t.Fatalf("spec.cancel = %v, %v; want true", run.Spec.Cancel, err)
	}
	run.Status.State = StateCancelled
	if err := c.Status().Update(ctx, &run); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelJobRun(ctx, vc.ID, sub.Response.ID); !IsValidation(err) {
		t.Errorf("cancelling a cancelled run: err = %v, want a validation error", err)
	}
	if _, err := s.DescribeJobRun(ctx, vc.ID, "0000000000000000000"); !IsNotFound(err) {
		t.Errorf("describing an unknown run: err = %v, want not found", err)
	}
}

// TestReadsDoNotWrite: listing and describing work for a caller who may only read.
func TestReadsDoNotWrite(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	sub, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj())
	if err != nil {
		t.Fatal(err)
	}
	denied := errors.New("read-only caller")
	readOnly := interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error { return denied },
		Update: func(context.Context, client.WithWatch, client.Object, ...client.UpdateOption) error { return denied },
		Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
			return denied
		},
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error { return denied },
		SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
			return denied
		},
	})
	reader := newTestSubmitter(readOnly)
	if runs, err := reader.ListJobRuns(ctx, ListJobRunsOptions{VirtualClusterID: vc.ID}); err != nil || len(runs) != 1 {
		t.Errorf("ListJobRuns = %v, %v", runs, err)
	}
	if _, err := reader.DescribeJobRun(ctx, vc.ID, sub.Response.ID); err != nil {
		t.Errorf("DescribeJobRun: %v", err)
	}
	if vcs, err := reader.ListVirtualClusters(ctx); err != nil || len(vcs) != 1 {
		t.Errorf("ListVirtualClusters = %v, %v", vcs, err)
	}
}

func TestVirtualClusters(t *testing.T) {
	c, s, vc := newCluster(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, openNamespace("sparkplace"))
	ctx := context.Background()
	if len(vc.ID) != virtualClusterIDLength || strings.Trim(vc.ID, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("id %q is not 25 characters of [0-9a-z]", vc.ID)
	}
	s.opts.ProtectedNamespaces = []string{"sparkplace"}
	for ns, want := range map[string]string{
		"kube-system": "system namespace",
		"sparkplace":  "system namespace",
		"unlabelled":  "not open to virtual clusters: the platform team labels it sparkplace.io/virtual-clusters=true",
		"missing":     "does not exist",
		"sales":       "already virtual cluster",
	} {
		if _, err := s.CreateVirtualCluster(ctx, "again", ns); !IsValidation(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("virtual cluster on %s: err = %v, want a validation error saying %q", ns, err, want)
		}
	}
	if again, err := s.CreateVirtualCluster(ctx, "sales-analytics", "sales"); err != nil || again.ID != vc.ID {
		t.Errorf("retried create = %v, %v; want the existing %s", again, err, vc.ID)
	}
	if _, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Obj()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteVirtualCluster(ctx, vc.ID); !IsValidation(err) || !strings.Contains(err.Error(), "active job runs") {
		t.Errorf("deleting with an active run: err = %v, want a validation error", err)
	}
	finish(t, c, vc.ID, JobRunID(vc.ID, "token-1"), StateCompleted)
	deleted, err := s.DeleteVirtualCluster(ctx, vc.ID)
	if err != nil || deleted.State != VirtualClusterTerminating {
		t.Fatalf("DeleteVirtualCluster = %v, %v; want TERMINATING until the controller has looked", deleted, err)
	}
	if _, err := s.StartJobRun(ctx, makeRequest().VC(vc.ID).Token("token-2").Obj()); !IsValidation(err) {
		t.Errorf("submitting to a terminating virtual cluster: err = %v, want a validation error", err)
	}
	var obj v1alpha1.VirtualCluster
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: vc.ID}, &obj); err != nil {
		t.Fatal(err)
	}
	obj.Status.State = VirtualClusterTerminated
	if err := c.Status().Update(ctx, &obj); err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateVirtualCluster(ctx, "sales-analytics-v2", "sales")
	if err != nil {
		t.Fatalf("re-registering a namespace whose virtual cluster is terminated: %v", err)
	}
	if _, err := s.DescribeJobRun(ctx, again.ID, JobRunID(vc.ID, "token-1")); !IsNotFound(err) {
		t.Errorf("the old cluster's run found under the new id: err = %v", err)
	}
	got, err := s.DescribeVirtualCluster(ctx, again.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &VirtualCluster{
		ID: again.ID, Name: "sales-analytics-v2", State: VirtualClusterRunning,
		ARN:               "arn:aws:emr-containers:us-west-2:152324983118:/virtualclusters/" + again.ID,
		ContainerProvider: ContainerProvider{ID: "sparkplace", Type: "EKS", Info: ContainerInfo{EKSInfo: EKSInfo{Namespace: "sales"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("virtual cluster (-want +got):\n%s", diff)
	}
}

// finish records a final state as the controller would.
func finish(t *testing.T, c client.Client, vcID, id string, state State) {
	t.Helper()
	var run v1alpha1.JobRun
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: id}, &run); err != nil {
		t.Fatal(err)
	}
	run.Status.State = state
	if err := c.Status().Update(context.Background(), &run); err != nil {
		t.Fatal(err)
	}
}
