package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers/types"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/submit"
)

// obj is a JSON object of an operation's input or output.
type obj = map[string]any

// opEnv is what one client's pass through the operations has made so far.
type opEnv struct {
	client, namespace, provider, createdBy string
	vc, template, templateARN, run, runARN string
}

// apiOp is one call of an emr-containers operation, made the same way by both clients: the input is the
// model's JSON (the AWS CLI's --cli-input-json; decoded into the SDK's input struct, whose field names are
// the model's), and the output is checked as the model's JSON.
type apiOp struct {
	op string
	in func(e *opEnv) obj
	// sdkIn replaces in for the SDK where the input holds a union (containerProvider.info), which its Go
	// type cannot decode from JSON.
	sdkIn func(e *opEnv) any
	// check reads a successful answer (and records ids in e); nil when any success will do.
	check func(t *testing.T, e *opEnv, out obj)
	// wantErr is the error type the call must answer, wantMsg a part of its message.
	wantErr, wantMsg string
	// then runs after the call: what the controller or the test must do before the next one.
	then func(t *testing.T, e *opEnv)
}

const (
	opsRole   = "arn:aws:iam::152324983118:role/emr-e2e-job-role"
	opsJar    = "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar"
	unknownID = "0000000000000000000"
)

// apiOperations is every operation of the model, in an order that builds what the next needs: a virtual
// cluster, a job template, a run from it, tags; the errors an SDK must match by type; the operations
// sparkplace does not serve; then cancel and the deletes.
func apiOperations(admin *submit.Submitter) []apiOp {
	notSupported := func(op string, in func(e *opEnv) obj) apiOp {
		return apiOp{op: op, in: in, wantErr: "ValidationException", wantMsg: "not supported by sparkplace"}
	}
	return []apiOp{
		{op: "CreateVirtualCluster",
			in: func(e *opEnv) obj {
				return obj{"name": "ops-" + e.client, "tags": obj{"team": "data"}, "containerProvider": obj{
					"id": e.provider, "type": "EKS", "info": obj{"eksInfo": obj{"namespace": e.namespace}}}}
			},
			sdkIn: func(e *opEnv) any {
				return &emrcontainers.CreateVirtualClusterInput{Name: aws.String("ops-" + e.client), Tags: map[string]string{"team": "data"},
					ContainerProvider: &types.ContainerProvider{Id: aws.String(e.provider), Type: types.ContainerProviderTypeEks,
						Info: &types.ContainerInfoMemberEksInfo{Value: types.EksInfo{Namespace: aws.String(e.namespace)}}}}
			},
			check: func(t *testing.T, e *opEnv, out obj) { e.vc = str(t, out, "id") }},
		{op: "DescribeVirtualCluster", in: func(e *opEnv) obj { return obj{"id": e.vc} },
			check: func(t *testing.T, e *opEnv, out obj) {
				wantFields(t, out, obj{"virtualCluster.state": "RUNNING", "virtualCluster.containerProvider.id": e.provider,
					"virtualCluster.containerProvider.type": "EKS", "virtualCluster.tags.team": "data"})
			}},
		{op: "ListVirtualClusters", in: func(e *opEnv) obj { return obj{"containerProviderId": e.provider, "states": []string{"RUNNING"}} },
			check: func(t *testing.T, e *opEnv, out obj) { wantIDs(t, out, "virtualClusters", e.vc) }},
		{op: "CreateJobTemplate",
			in: func(e *opEnv) obj {
				return obj{"name": "pi-" + e.client, "tags": obj{"team": "data"}, "jobTemplateData": obj{
					"executionRoleArn": opsRole, "releaseLabel": "spark-3.5.3",
					"jobDriver": obj{"sparkSubmitJobDriver": obj{"entryPoint": "${EntryPoint}",
						"sparkSubmitParameters": "--class org.apache.spark.examples.SparkPi --conf spark.executor.instances=${Executors}"}},
					"parameterConfiguration": obj{"EntryPoint": obj{"type": "STRING"}, "Executors": obj{"type": "NUMBER", "defaultValue": "2"}},
				}}
			},
			check: func(t *testing.T, e *opEnv, out obj) {
				e.template, e.templateARN = str(t, out, "id"), str(t, out, "arn")
			}},
		{op: "DescribeJobTemplate", in: func(e *opEnv) obj { return obj{"id": e.template} },
			check: func(t *testing.T, e *opEnv, out obj) {
				wantFields(t, out, obj{"jobTemplate.name": "pi-" + e.client, "jobTemplate.createdBy": e.createdBy, "jobTemplate.tags.team": "data"})
			}},
		{op: "ListJobTemplates", in: func(*opEnv) obj { return obj{} },
			check: func(t *testing.T, e *opEnv, out obj) { wantIDs(t, out, "templates", e.template) }},
		{op: "StartJobRun",
			in: func(e *opEnv) obj {
				return obj{"virtualClusterId": e.vc, "name": "pi", "jobTemplateId": e.template, "jobTemplateParameters": obj{"EntryPoint": opsJar},
					"retryPolicyConfiguration": obj{"maxAttempts": 2}, "tags": obj{"stage": "e2e"}}
			},
			check: func(t *testing.T, e *opEnv, out obj) { e.run, e.runARN = str(t, out, "id"), str(t, out, "arn") }},
		{op: "DescribeJobRun", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": e.run} },
			check: func(t *testing.T, e *opEnv, out obj) {
				wantFields(t, out, obj{"jobRun.createdBy": e.createdBy, "jobRun.tags.stage": "e2e", "jobRun.releaseLabel": "spark-3.5.3",
					"jobRun.retryPolicyConfiguration.maxAttempts": 2.0, "jobRun.retryPolicyExecution.currentAttemptCount": 1.0,
					"jobRun.jobDriver.sparkSubmitJobDriver.entryPoint": opsJar, "jobRun.executionRoleArn": opsRole})
				if p, _ := field(out, "jobRun.jobDriver.sparkSubmitJobDriver.sparkSubmitParameters").(string); !strings.Contains(p, "spark.executor.instances=2") {
					t.Errorf("sparkSubmitParameters %q: the template's default Executors=2 was not filled in", p)
				}
			}},
		{op: "ListJobRuns", in: func(e *opEnv) obj {
			return obj{"virtualClusterId": e.vc, "states": []string{"PENDING", "SUBMITTED", "RUNNING"}}
		},
			check: func(t *testing.T, e *opEnv, out obj) { wantIDs(t, out, "jobRuns", e.run) }},
		{op: "TagResource", in: func(e *opEnv) obj { return obj{"resourceArn": e.runARN, "tags": obj{"owner": e.client}} }},
		{op: "ListTagsForResource", in: func(e *opEnv) obj { return obj{"resourceArn": e.runARN} },
			check: func(t *testing.T, e *opEnv, out obj) {
				wantFields(t, out, obj{"tags": map[string]any{"stage": "e2e", "owner": e.client}})
			}},
		{op: "UntagResource", in: func(e *opEnv) obj { return obj{"resourceArn": e.runARN, "tagKeys": []string{"owner"}} }},
		{op: "ListTagsForResource", in: func(e *opEnv) obj { return obj{"resourceArn": e.runARN} },
			check: func(t *testing.T, e *opEnv, out obj) { wantFields(t, out, obj{"tags": map[string]any{"stage": "e2e"}}) }},
		{op: "ListTagsForResource", in: func(e *opEnv) obj { return obj{"resourceArn": e.templateARN} },
			check: func(t *testing.T, e *opEnv, out obj) { wantFields(t, out, obj{"tags": map[string]any{"team": "data"}}) }},

		// Errors: each of a type the operation declares, so that the SDK matches it.
		{op: "DescribeJobRun", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": unknownID} },
			wantErr: "ResourceNotFoundException", wantMsg: "not found"},
		{op: "CancelJobRun", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": unknownID} },
			wantErr: "ValidationException", wantMsg: "not found"},
		{op: "ListJobRuns", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "states": []string{"FINISHED"}} },
			wantErr: "ValidationException", wantMsg: `"FINISHED" is not one of`},
		{op: "ListJobRuns", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "maxResults": 1001} },
			wantErr: "ValidationException", wantMsg: "maxResults"},
		{op: "DescribeVirtualCluster", in: func(*opEnv) obj { return obj{"id": unknownID} },
			wantErr: "ResourceNotFoundException", wantMsg: "not found"},

		// Not served: a ValidationException (every one of them declares it) that says so.
		notSupported("CreateManagedEndpoint", func(e *opEnv) obj {
			return obj{"name": "studio", "virtualClusterId": e.vc, "type": "JUPYTER_ENTERPRISE_GATEWAY", "releaseLabel": "emr-6.9.0-latest", "executionRoleArn": opsRole}
		}),
		notSupported("ListManagedEndpoints", func(e *opEnv) obj { return obj{"virtualClusterId": e.vc} }),
		notSupported("DescribeManagedEndpoint", func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": unknownID} }),
		notSupported("DeleteManagedEndpoint", func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": unknownID} }),
		notSupported("GetManagedEndpointSessionCredentials", func(e *opEnv) obj {
			return obj{"virtualClusterIdentifier": e.vc, "endpointIdentifier": unknownID, "executionRoleArn": opsRole, "credentialType": "TOKEN"}
		}),
		notSupported("CreateSecurityConfiguration", func(*opEnv) obj { return obj{"name": "sec", "securityConfigurationData": obj{}} }),
		notSupported("ListSecurityConfigurations", func(*opEnv) obj { return obj{} }),
		notSupported("DescribeSecurityConfiguration", func(*opEnv) obj { return obj{"id": unknownID} }),

		{op: "CancelJobRun", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": e.run} },
			check: func(t *testing.T, e *opEnv, out obj) { wantFields(t, out, obj{"id": e.run, "virtualClusterId": e.vc}) },
			then:  func(t *testing.T, e *opEnv) { waitJobRunState(t, admin, e.vc, e.run, submit.StateCancelled) }},
		{op: "DescribeJobRun", in: func(e *opEnv) obj { return obj{"virtualClusterId": e.vc, "id": e.run} },
			check: func(t *testing.T, e *opEnv, out obj) { wantFields(t, out, obj{"jobRun.state": "CANCELLED"}) }},
		{op: "DeleteJobTemplate", in: func(e *opEnv) obj { return obj{"id": e.template} }},
		{op: "DescribeJobTemplate", in: func(e *opEnv) obj { return obj{"id": e.template} },
			wantErr: "ResourceNotFoundException", wantMsg: "not found"},
		{op: "DeleteVirtualCluster", in: func(e *opEnv) obj { return obj{"id": e.vc} },
			check: func(t *testing.T, e *opEnv, out obj) { wantFields(t, out, obj{"id": e.vc}) }},
		{op: "DescribeVirtualCluster", in: func(e *opEnv) obj { return obj{"id": e.vc} },
			check: func(t *testing.T, e *opEnv, out obj) {
				// TERMINATING until the controller has seen that no run is active, then TERMINATED.
				if s := field(out, "virtualCluster.state"); s != "TERMINATING" && s != "TERMINATED" {
					t.Errorf("a deleted virtual cluster is %v, want TERMINATING or TERMINATED", s)
				}
				wantFields(t, out, obj{"virtualCluster.containerProvider.id": e.provider, "virtualCluster.tags.team": "data"})
			}},
	}
}

// TestAPIEveryOperation drives every operation of the emr-containers model the AWS CLI ships through the
// API on the real control plane, once with the real `aws emr-containers` and once with aws-sdk-go-v2, from
// one table: job runs from a job template with a retry policy and tags, tagging, virtual clusters that keep
// their containerProvider.id and tags, errors of the types each operation declares (the SDK matches them to
// its typed errors), and managed endpoints and security configurations answering that they are not
// supported. Every SDK answer carries x-amzn-RequestId and writes timestamps as iso8601 whole seconds.
func TestAPIEveryOperation(t *testing.T) {
	// The CLI's ~40 calls take a minute, mostly the CLI's own start: let the suite's waits overlap them.
	t.Parallel()
	requireJobs(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is required for this test")
	}
	ctx := context.Background()
	platform := apiKey{"AKIAPLATFORM0000000", "platform-secret", "platform@example.com"}
	url := startAPI(ctx, t, platform)
	grantClusterRole(t, platform.user, []rbacv1.PolicyRule{{APIGroups: []string{"sparkplace.io"}, Resources: []string{"*"}, Verbs: []string{"*"}}})
	admin := newSubmitter(adminClient(t))
	ops := apiOperations(admin)

	var covered []string
	for _, o := range ops {
		covered = append(covered, o.op)
	}
	for _, op := range modelOperations(t) {
		if !slices.Contains(covered, op) {
			t.Errorf("the model's %s is not called by this test", op)
		}
	}

	wire := &wireCheck{}
	sdk := emrcontainers.New(emrcontainers.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), HTTPClient: wire,
		Credentials: credentials.NewStaticCredentialsProvider(platform.id, platform.secret, ""),
	})
	clients := map[string]func(t *testing.T, e *opEnv, o apiOp) (obj, error){
		"cli": func(t *testing.T, e *opEnv, o apiOp) (obj, error) {
			in, err := json.Marshal(o.in(e))
			if err != nil {
				t.Fatal(err)
			}
			return awsCLI(t, url, platform, kebab(o.op), "--cli-input-json", string(in))
		},
		"sdk": func(t *testing.T, e *opEnv, o apiOp) (obj, error) { return callSDK(ctx, t, sdk, e, o) },
	}
	for name, call := range clients {
		t.Run(name, func(t *testing.T) {
			e := &opEnv{client: name, namespace: tenantNamespace(t), provider: "eks-" + name,
				createdBy: "arn:aws:iam::152324983118:user/" + platform.user}
			for i, o := range ops {
				out, err := call(t, e, o)
				code := apiErrorCode(err)
				switch {
				case o.wantErr == "" && err != nil:
					t.Fatalf("#%d %s: %v", i, o.op, err)
				case o.wantErr != "" && (code != o.wantErr || !strings.Contains(err.Error(), o.wantMsg)):
					t.Errorf("#%d %s: %v, want a %s saying %q", i, o.op, err, o.wantErr, o.wantMsg)
				case o.check != nil:
					o.check(t, e, out)
				}
				if name == "sdk" {
					for _, p := range wire.take() {
						t.Errorf("#%d %s: %s", i, o.op, p)
					}
				}
				if o.then != nil {
					o.then(t, e)
				}
			}
		})
	}
}

// callSDK calls the operation's method of the SDK client with the input decoded from the model's JSON, and
// returns the output as the model's JSON. An error of a type the model declares must be the SDK's typed
// error, which it is only when the service answered a type the operation declares.
func callSDK(ctx context.Context, t *testing.T, c *emrcontainers.Client, e *opEnv, o apiOp) (obj, error) {
	t.Helper()
	m := reflect.ValueOf(c).MethodByName(o.op)
	if !m.IsValid() {
		t.Fatalf("aws-sdk-go-v2 has no %s", o.op)
	}
	var in reflect.Value
	if o.sdkIn != nil {
		in = reflect.ValueOf(o.sdkIn(e))
	} else {
		in = reflect.New(m.Type().In(1).Elem())
		data, _ := json.Marshal(o.in(e))
		if err := json.Unmarshal(data, in.Interface()); err != nil {
			t.Fatalf("%s input %s: %v", o.op, data, err)
		}
	}
	res := m.Call([]reflect.Value{reflect.ValueOf(ctx), in})
	if err, _ := res[1].Interface().(error); err != nil {
		var declared bool
		switch apiErrorCode(err) {
		case "ValidationException":
			declared = errors.As(err, new(*types.ValidationException))
		case "ResourceNotFoundException":
			declared = errors.As(err, new(*types.ResourceNotFoundException))
		case "InternalServerException":
			declared = errors.As(err, new(*types.InternalServerException))
		}
		if !declared {
			t.Errorf("%s: the SDK did not match %v to an error type the operation declares", o.op, err)
		}
		return nil, err
	}
	data, err := json.Marshal(res[0].Interface())
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return modelNames(out).(obj), nil
}

// modelNames turns the SDK's Go field names back into the model's (JobRun -> jobRun, Arn -> arn); map keys
// that start lower-case (the tests' tags) are left as they are.
func modelNames(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			r := []rune(k)
			r[0] = unicode.ToLower(r[0])
			out[string(r)] = modelNames(x)
		}
		return out
	case []any:
		for i := range v {
			v[i] = modelNames(v[i])
		}
	}
	return v
}

// wireCheck is the SDK's HTTP client: it records every answer without x-amzn-RequestId, and every
// timestamp not written as the service writes the model's iso8601 Dates (UTC, whole seconds).
type wireCheck struct {
	mu       sync.Mutex
	problems []string
}

var (
	timestampField = regexp.MustCompile(`"(createdAt|finishedAt)":\s*("[^"]*"|[0-9.]+)`)
	wireTimestamp  = regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$`)
)

func (w *wireCheck) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	w.mu.Lock()
	defer w.mu.Unlock()
	if resp.Header.Get("x-amzn-RequestId") == "" {
		w.problems = append(w.problems, fmt.Sprintf("%s %s answered %d without x-amzn-RequestId", r.Method, r.URL.Path, resp.StatusCode))
	}
	for _, m := range timestampField.FindAllSubmatch(body, -1) {
		if !wireTimestamp.Match(m[2]) {
			w.problems = append(w.problems, fmt.Sprintf("%s written as %s, want iso8601 UTC whole seconds", m[1], m[2]))
		}
	}
	return resp, nil
}

func (w *wireCheck) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.problems
	w.problems = nil
	return p
}

// modelOperations are the operations of the emr-containers model the installed AWS CLI ships.
func modelOperations(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("python3", "-c", `import botocore.session
print("\n".join(botocore.session.get_session().get_service_model("emr-containers").operation_names))`).Output()
	if err != nil {
		t.Fatalf("reading the AWS CLI's emr-containers model with botocore: %v", err)
	}
	ops := strings.Fields(string(out))
	if len(ops) < 20 {
		t.Fatalf("the model has %d operations: %v", len(ops), ops)
	}
	return ops
}

// kebab is the CLI's command for an operation: DescribeJobRun -> describe-job-run.
func kebab(op string) string {
	var b strings.Builder
	for i, r := range op {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

var cliErrorCode = regexp.MustCompile(`An error occurred \((\w+)\)`)

// apiErrorCode is the service's error type of an SDK or CLI error.
func apiErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if code := errorCode(err); code != "" {
		return code
	}
	if m := cliErrorCode.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// field reads a dotted path of a JSON object.
func field(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(t *testing.T, out obj, path string) string {
	t.Helper()
	s, _ := field(out, path).(string)
	if s == "" {
		t.Fatalf("no %s in %v", path, out)
	}
	return s
}

// wantFields checks fields of an answer by dotted path.
func wantFields(t *testing.T, out obj, want obj) {
	t.Helper()
	for path, w := range want {
		if got := field(out, path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v (%T), want %v", path, got, got, w)
		}
	}
}

// wantIDs checks that the list under key holds exactly the ids given.
func wantIDs(t *testing.T, out obj, key string, ids ...string) {
	t.Helper()
	items, _ := out[key].([]any)
	var got []string
	for _, it := range items {
		if id, ok := field(it, "id").(string); ok {
			got = append(got, id)
		}
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			t.Errorf("%s = %v, want it to hold %s", key, got, id)
		}
	}
}

// grantClusterRole gives user the rules cluster-wide (a platform team's grant), until the test ends.
func grantClusterRole(t *testing.T, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	name := "e2e-" + strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(t.Name()+"-"+user), "-"), "-")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := cp.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := cp.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cp.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
}
