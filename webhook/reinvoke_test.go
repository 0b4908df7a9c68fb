package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// admit sends raw through the handler and returns the pod JSON the API server would store.
func admit(t *testing.T, h *Handler, raw []byte) (patched []byte, patch []byte) {
	t.Helper()
	req := podRequest(t, &corev1.Pod{})
	req.Object.Raw, req.Namespace = raw, "spark-jobs"
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed {
		t.Fatalf("not allowed: %+v", resp.Result)
	}
	if len(resp.Patch) == 0 {
		return raw, nil
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("applying the patch: %v", err)
	}
	return out, resp.Patch
}

// TestPatchKeepsFieldsUnknownToTheAPI admits an nvme executor that carries, in its required node affinity
// term, an init container and a toleration, fields this webhook's k8s.io/api does not know (a newer API
// server's). The patch adds the zone requirement, the chown init container and the tolerations without
// dropping them.
func TestPatchKeepsFieldsUnknownToTheAPI(t *testing.T) {
	pod := withProfile(readFixture(t, "spark-3.5-executor"), "nvme")
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}}}}},
	}}}
	pod.Spec.InitContainers = []corev1.Container{{Name: "fetch-deps", Image: "busybox:1.37.0"}}
	var doc map[string]any
	raw, _ := json.Marshal(pod)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc["spec"].(map[string]any)
	term := spec["affinity"].(map[string]any)["nodeAffinity"].(map[string]any)["requiredDuringSchedulingIgnoredDuringExecution"].(map[string]any)["nodeSelectorTerms"].([]any)[0].(map[string]any)
	term["futureTermField"] = "kept"
	spec["affinity"].(map[string]any)["futureAffinityField"] = map[string]any{"x": 1.0}
	spec["initContainers"].([]any)[0].(map[string]any)["futureContainerField"] = "kept"
	spec["tolerations"].([]any)[0].(map[string]any)["futureTolerationField"] = "kept"
	raw, _ = json.Marshal(doc)

	h := &Handler{Placer: newTestPlacer(t, policies.Options{}), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	patched, _ := admit(t, h, raw)

	var got map[string]any
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	gotSpec := got["spec"].(map[string]any)
	aff := gotSpec["affinity"].(map[string]any)
	gotTerm := aff["nodeAffinity"].(map[string]any)["requiredDuringSchedulingIgnoredDuringExecution"].(map[string]any)["nodeSelectorTerms"].([]any)[0].(map[string]any)
	inits := gotSpec["initContainers"].([]any)
	tolerations := gotSpec["tolerations"].([]any)
	for what, v := range map[string]any{
		"node selector term field": gotTerm["futureTermField"],
		"affinity field":           aff["futureAffinityField"],
		"init container field":     inits[len(inits)-1].(map[string]any)["futureContainerField"],
		"toleration field":         tolerations[0].(map[string]any)["futureTolerationField"],
	} {
		if v == nil {
			t.Errorf("the %s unknown to k8s.io/api was dropped by the patch", what)
		}
	}
	if exprs := gotTerm["matchExpressions"].([]any); len(exprs) != 2 || exprs[1].(map[string]any)["key"] != "topology.kubernetes.io/zone" {
		t.Errorf("the zone requirement was not added to the user's term: %v", exprs)
	}
	if name := inits[0].(map[string]any)["name"]; name != "sparkplace-chown-local-dirs" || len(inits) != 2 {
		t.Errorf("init containers %v: want the chown container first, then the pod's", inits)
	}
}

// TestReinvocationAfterDefaulting admits an nvme executor, lets the API server default what it defaults
// (the init container's termination message fields, the service-account token mount in every container)
// and another webhook add a label, and admits it again: no patch, and the annotation still says what
// sparkplace did (nothing "respected").
func TestReinvocationAfterDefaulting(t *testing.T) {
	h := &Handler{Placer: newTestPlacer(t, policies.Options{}), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	raw, _ := json.Marshal(withProfile(readFixture(t, "spark-3.5-executor"), "nvme"))
	first, _ := admit(t, h, raw)

	var pod corev1.Pod
	if err := json.Unmarshal(first, &pod); err != nil {
		t.Fatal(err)
	}
	wantAnnotation := pod.Annotations[placement.AnnotationKey]
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		c.TerminationMessagePath, c.TerminationMessagePolicy = corev1.TerminationMessagePathDefault, corev1.TerminationMessageReadFile
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "kube-api-access-7xk2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
	pod.Labels["team.example.com/cost-center"] = "analytics"
	defaulted, _ := json.Marshal(&pod)

	second, patch := admit(t, h, defaulted)
	if patch != nil {
		t.Errorf("reinvocation patched %s; want no patch", patch)
	}
	var again corev1.Pod
	if err := json.Unmarshal(second, &again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantAnnotation, again.Annotations[placement.AnnotationKey]); diff != "" {
		t.Errorf("annotation changed on reinvocation (-first +second):\n%s", diff)
	}
}

type failingPods struct{}

func (failingPods) GetPod(context.Context, string, string) (*corev1.Pod, error) {
	return nil, errors.New("connection refused")
}

// TestClusterReadFailureIsRefused: when the owner pod of a client-mode executor cannot be read, the answer
// is a refusal (403, which Spark's client does not retry: its allocator asks again next round), not a 5xx
// (which the client retries three times).
func TestClusterReadFailureIsRefused(t *testing.T) {
	placer := newTestPlacer(t, policies.Options{})
	placer.Cluster = cluster.NewState(failingPods{})
	h := &Handler{Placer: placer, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	pod := readFixture(t, "spark-3.5-executor")
	pod.OwnerReferences[0].Name, pod.OwnerReferences[0].UID = "jupyter-alice", "0b8e6f0c-1d2e-4f3a-9b8c-7d6e5f4a3b2c"
	resp := h.Handle(context.Background(), podRequest(t, pod))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("answer %+v; want a 403 refusal", resp.AdmissionResponse)
	}
	for _, want := range []string{"could not read the cluster state", "connection refused", "temporary"} {
		if !strings.Contains(resp.Result.Message, want) {
			t.Errorf("message %q does not say %q", resp.Result.Message, want)
		}
	}
}

// TestInitContainersOfOneDecisionEncodedOnce: the executors of one application under nvme share a decision,
// and the handler encodes its chown init container once; every executor still gets the whole of it, and a
// pod that brings its own init container gets the chown container added before it, not the shared JSON.
func TestInitContainersOfOneDecisionEncodedOnce(t *testing.T) {
	h := &Handler{Placer: newTestPlacer(t, policies.Options{}), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	var first []corev1.Container
	for id := 2; id <= 4; id++ {
		pod := withProfile(sparkExecutor(t, clientMode, 0, id), "nvme")
		if id == 4 {
			pod.Spec.InitContainers = []corev1.Container{{Name: "fetch-deps", Image: "busybox:1.37.0"}}
		}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		patched, _ := admit(t, h, raw)
		var got corev1.Pod
		if err := json.Unmarshal(patched, &got); err != nil {
			t.Fatal(err)
		}
		switch {
		case id == 2:
			if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != "sparkplace-chown-local-dirs" {
				t.Fatalf("init containers %+v, want the chown container", got.Spec.InitContainers)
			}
			first = got.Spec.InitContainers
		case id == 3:
			if diff := cmp.Diff(first, got.Spec.InitContainers); diff != "" {
				t.Errorf("the second executor's init containers (-first +second):\n%s", diff)
			}
		default:
			want := append(slices.Clone(first), pod.Spec.InitContainers...)
			if diff := cmp.Diff(want, got.Spec.InitContainers); diff != "" {
				t.Errorf("init containers of a pod with its own (-want +got):\n%s", diff)
			}
		}
	}
	if n := h.initJSON.Len(); n != 1 {
		t.Errorf("%d init-container encodings remembered, want 1", n)
	}
}
