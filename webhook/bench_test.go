package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/policies"
)

// reviewBody is the HTTP body the API server posts for req.
func reviewBody(t testing.TB, req admission.Request) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1TypeMeta,
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// serve posts body to wh as the API server does and returns the decoded response.
func serve(t testing.TB, wh http.Handler, body []byte) *admissionv1.AdmissionResponse {
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("bad response %q: %v", rec.Body, err)
	}
	return review.Response
}

// BenchmarkAdmission measures one admission through the live server's stack (controller-runtime's webhook
// server with its request metrics and the request's logger: decode the review, handle, encode the response)
// against a no-op handler served the same way on reviews of the same pods (made by the case's own pods
// function: the same shape and size, so that the ratio counts what sparkplace adds to an admission, not a
// larger review's decoding), the two interleaved in small blocks (measureInterleaved), so that the machine's
// load, which drifts over a run on a shared machine, hits both alike; each case reports its ratios to that
// no-op (wall/noop, cpu/noop) beside its own figures and the no-op's (noop-ns/op, noop-cpu-ns/op). The noop
// case measures the no-op against itself: its ratios show the method's noise.
//
//	go test ./webhook -run '^$' -bench Admission -benchtime 2000x -count 10    (or: make bench)
//
// Each review is what the API server posts for a pod Spark's driver creates (apiServerReview: the user, the
// options, the pod's managedFields). Every admission is of a pod never seen before, as on a live cluster:
//   - executor-hit/client-mode: executors of one running application, each with a fresh local dir
//     /var/data/spark-<uuid> (Spark in client mode, where the driver sets no SPARK_LOCAL_DIRS);
//   - executor-hit/cluster-mode: the same with two local dirs, the driver's paths in shuffled order (Spark in
//     cluster mode);
//   - executor-hit/nvme: client-mode executors under the nvme profile (hostPath local dirs, the chown init
//     container: the largest patch);
//   - executor-miss: the first executor of a new application each time, through an engine without a decision
//     cache (policies.Options.CacheSize -1): a full policy evaluation on every admission, whatever the
//     decision's key holds (were executor decisions keyed without the application id, a new application's
//     first executor would be a hit). Only what is remembered per decision key beside the engine (the
//     guardrail check, the zone term's feasibility: cluster.State.Remember) may be reused across applications;
//   - driver: a new application's driver each time (new app id, name and labels): the policy's decision for
//     a driver reads nothing that tells applications apart, so drivers of one shape share a cached decision
//     (see policies.readInputPaths), while the zone choice is made afresh for each;
//   - driver-capacity: the same, its zone chosen over a capacity index of 5,000 nodes and 1,000 running
//     executors. The index (package zonecapacity) is kept up to date incrementally by node, pod and DaemonSet
//     events; choosing a zone costs O(zones) at admission, not a walk over the nodes.
//
// Every case reports decision-cache misses per op: above 0 in a hit case means executors of one
// application (or drivers of one shape) do not share a decision. Besides wall time per op (ns/op, B/op and
// allocs/op are the case's alone, not the no-op's) the benchmark reports cpu-ns/op, the process's CPU time
// (user+system, all threads, so garbage collection included) per op: on a shared machine other processes
// stretch wall time but not this.
func BenchmarkAdmission(b *testing.B) {
	// As `sparkplace webhook` does: without a logger, controller-runtime keeps a pending entry per request,
	// which the live server does not pay.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	placer := newTestPlacer(b, policies.Options{})
	// The miss case's engine never holds a decision: every admission evaluates the bundle.
	uncached := newTestPlacer(b, policies.Options{CacheSize: -1})
	// A new application for every pod of the miss and driver cases, across the benchmark's rounds too (the
	// framework runs each case with growing b.N, and the cache outlives a round).
	apps := 1
	newApp := func() int { apps++; return apps }
	cases := []struct {
		name   string
		placer *Placer // nil: the no-op handler
		pods   func(i int) *corev1.Pod
	}{
		{"noop", nil, func(i int) *corev1.Pod { return sparkExecutor(b, clientMode, 0, i+2) }},
		{"executor-hit/client-mode", placer, func(i int) *corev1.Pod { return sparkExecutor(b, clientMode, 0, i+2) }},
		{"executor-hit/cluster-mode", placer, func(i int) *corev1.Pod { return sparkExecutor(b, clusterMode, 0, i+2) }},
		{"executor-hit/nvme", placer, func(i int) *corev1.Pod { return withProfile(sparkExecutor(b, clientMode, 0, i+2), "nvme") }},
		{"executor-miss", uncached, func(int) *corev1.Pod { return sparkExecutor(b, clientMode, newApp(), 1) }},
		{"driver", placer, func(int) *corev1.Pod { return sparkDriver(b, newApp()) }},
		// The driver's zone choice at scale: 5,000 nodes and 1,000 Spark pods in the capacity index, and
		// reservations that expire at once, so every admission computes a fresh choice (as every new
		// application's driver does); it reads running sums, not the nodes.
		{"driver-capacity", capacityPlacer(b), func(int) *corev1.Pod { return sparkDriver(b, newApp()) }},
	}
	// The no-op handler every case is measured against, interleaved with it (see measureInterleaved).
	baseline := liveStack(newNoop())
	for _, bc := range cases {
		hook := newNoop()
		if bc.placer != nil {
			hook = &admission.Webhook{Handler: &Handler{Placer: bc.placer, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}}
		}
		wh := liveStack(hook)
		b.Run(bc.name, func(b *testing.B) {
			// The application's first pod (i = -1), before the measured ones, and a check that it is admitted.
			if resp := serve(b, wh, apiServerReview(b, bc.pods(-1))); !resp.Allowed {
				b.Fatalf("not allowed: %+v", resp.Result)
			}
			bodies := make([][]byte, b.N)
			baseBodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = apiServerReview(b, bc.pods(i))
				baseBodies[i] = apiServerReview(b, bc.pods(i))
			}
			misses := cacheMisses(bc.placer)
			runtime.GC() // the setup's garbage is not the admissions' CPU time
			b.ReportAllocs()
			b.ResetTimer()
			it, base := measureInterleaved(b, wh, bodies, baseline, baseBodies)
			b.StopTimer()
			n := float64(b.N)
			// The case's own figures replace the framework's, which count both handlers.
			b.ReportMetric(float64(it.wall)/n, "ns/op")
			b.ReportMetric(float64(it.cpu)/n, "cpu-ns/op")
			b.ReportMetric(float64(it.bytes)/n, "B/op")
			b.ReportMetric(float64(it.allocs)/n, "allocs/op")
			b.ReportMetric(float64(base.wall)/n, "noop-ns/op")
			b.ReportMetric(float64(base.cpu)/n, "noop-cpu-ns/op")
			b.ReportMetric(float64(it.wall)/float64(base.wall), "wall/noop")
			b.ReportMetric(float64(it.cpu)/float64(base.cpu), "cpu/noop")
			b.ReportMetric(float64(cacheMisses(bc.placer)-misses)/n, "misses/op")
		})
	}
}

// newNoop is a no-op handler: it admits every pod unchanged, after controller-runtime decoded the review.
func newNoop() *admission.Webhook {
	return &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})}
}

// interleaveBlock is how many admissions each handler serves in turn in measureInterleaved: small enough
// that a change in the machine's load (the other processes on a shared machine) hits both alike, large
// enough that reading the clocks costs nothing beside the admissions.
const interleaveBlock = 8

// usage is what some admissions cost: wall and process CPU time in nanoseconds, heap bytes and objects
// allocated.
type usage struct{ wall, cpu, bytes, allocs int64 }

// measureInterleaved serves bodies to wh and baseBodies to baseline (as many), the two in turns of
// interleaveBlock admissions (the order of the two swapped every turn), and returns what each cost in
// total. The process's CPU time includes the garbage collector's: its background work lands in whichever
// block runs, so the two handlers share it by time rather than by the garbage each left; its assists are
// charged to the allocating goroutine, and so to the handler that allocates.
func measureInterleaved(b *testing.B, wh http.Handler, bodies [][]byte, baseline http.Handler, baseBodies [][]byte) (it, base usage) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	read := func() usage {
		metrics.Read(samples)
		return usage{wall: time.Now().UnixNano(), cpu: processCPU(b), bytes: int64(samples[0].Value.Uint64()), allocs: int64(samples[1].Value.Uint64())}
	}
	run := func(to *usage, h http.Handler, bodies [][]byte) {
		start := read()
		for _, body := range bodies {
			req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		end := read()
		to.wall += end.wall - start.wall
		to.cpu += end.cpu - start.cpu
		to.bytes += end.bytes - start.bytes
		to.allocs += end.allocs - start.allocs
	}
	for i, turn := 0, 0; i < len(bodies); i, turn = i+interleaveBlock, turn+1 {
		j := min(i+interleaveBlock, len(bodies))
		if turn%2 == 0 {
			run(&base, baseline, baseBodies[i:j])
			run(&it, wh, bodies[i:j])
		} else {
			run(&it, wh, bodies[i:j])
			run(&base, baseline, baseBodies[i:j])
		}
	}
	return it, base
}

// cacheMisses counts the decision-cache misses of a placer's engine so far (0 for the no-op handler).
func cacheMisses(p *Placer) uint64 {
	if p == nil {
		return 0
	}
	return p.Engine.(*policies.Engine).CacheStats().Misses
}

// capacityPlacer places over a cluster of 5,000 nodes (spot and on-demand in three zones) and 1,000 running
// executors, with driverZone.reservationSeconds 0.
func capacityPlacer(b *testing.B) *Placer {
	spot := map[string]int{"us-east-1a": 1000, "us-east-1b": 600, "us-east-1c": 2400}
	state := zoneFleet(spot)
	for i := range 997 { // with zoneFleet's 3 on-demand and 4,000 spot nodes: 5,000
		zone := []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("system-%d", i), Labels: map[string]string{corev1.LabelTopologyZone: zone}}}
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}
		state.SetNode(n)
	}
	for i := range 1000 {
		zone := []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
		pod := readFixture(b, "spark-3.5-executor")
		pod.Name = fmt.Sprintf("running-exec-%d", i)
		pod.Labels[LabelAppID] = fmt.Sprintf("spark-%032d", i/8)
		pod.Spec.NodeName = fmt.Sprintf("spot-%s-%d", zone, i%spot[zone])
		pod.Spec.Containers[len(pod.Spec.Containers)-1].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}
		pod.Status.Phase = corev1.PodRunning
		state.SetPod(pod)
	}
	return newZonePlacer(b, state, "driverZone: {reservationSeconds: 0}")
}

// How Spark sets an executor's local dirs.
const (
	// clientMode: the driver JVM runs outside the cluster and sets no SPARK_LOCAL_DIRS: every executor gets a
	// fresh /var/data/spark-<uuid>.
	clientMode = iota
	// clusterMode: executors inherit the driver's local dirs (two here), in shuffled order.
	clusterMode
)

// sparkExecutor is executor id of application app (0: the fixture's application; n > 0: another one, with
// its own id and driver) as Spark creates it, its local dirs set as in mode.
func sparkExecutor(t testing.TB, mode, app, id int) *corev1.Pod {
	pod := cachedFixture(t, "spark-3.5-executor")
	if app > 0 {
		pod.Labels[LabelAppID] = fmt.Sprintf("spark-%032x", app)
	}
	prefix := strings.TrimSuffix(pod.Name, "-exec-3")
	pod.Name = fmt.Sprintf("%s-exec-%d", prefix, id)
	pod.Spec.Hostname = pod.Name
	pod.Labels[LabelExecID] = strconv.Itoa(id)
	var dirs []string
	switch mode {
	case clientMode:
		dirs = []string{"/var/data/spark-" + uuid.NewString()}
	case clusterMode:
		dirs = []string{"/var/data/spark-2f1e0d9c-8b7a-4655-9443-2f1e0d9c8b7a", "/var/data/spark-7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"}
		if id%2 == 1 {
			dirs[0], dirs[1] = dirs[1], dirs[0]
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "spark-local-dir-2", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	c := &pod.Spec.Containers[len(pod.Spec.Containers)-1]
	var mounts []corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(m.Name, "spark-local-dir-") {
			mounts = append(mounts, m)
		}
	}
	for i, d := range dirs {
		mounts = append(mounts, corev1.VolumeMount{Name: fmt.Sprintf("spark-local-dir-%d", i+1), MountPath: d})
	}
	c.VolumeMounts = mounts
	for i := range c.Env {
		switch c.Env[i].Name {
		case "SPARK_EXECUTOR_ID":
			c.Env[i].Value = strconv.Itoa(id)
		case "SPARK_LOCAL_DIRS":
			c.Env[i].Value = strings.Join(dirs, ",")
		}
	}
	return pod
}

// fixtureCache keeps the fixtures the benchmark builds thousands of pods from.
var fixtureCache = map[string]*corev1.Pod{}

// cachedFixture is a copy of a fixture, read once.
func cachedFixture(t testing.TB, name string) *corev1.Pod {
	if fixtureCache[name] == nil {
		fixtureCache[name] = readFixture(t, name)
	}
	return fixtureCache[name].DeepCopy()
}

// sparkDriver is the driver of application app, named and labelled for it.
func sparkDriver(t testing.TB, app int) *corev1.Pod {
	pod := cachedFixture(t, "spark-3.5-driver")
	pod.Labels[LabelAppID] = fmt.Sprintf("spark-%032x", app)
	pod.Name = fmt.Sprintf("app-%d-driver", app)
	return pod
}

// liveStack serves hook as `sparkplace webhook` does (see Run), the no-op handler alike: registered on
// controller-runtime's webhook server, which wraps it in its request metrics (admission.Webhook puts the
// request's logger into its context). Only the network and TLS are left out (make bench-cluster measures
// those).
func liveStack(hook *admission.Webhook) http.Handler {
	server := crwebhook.NewServer(crwebhook.Options{})
	server.Register(Path, hook)
	return server.WebhookMux()
}

// apiServerReview is the AdmissionReview the API server posts for a create of pod by Spark's driver
// (the fabric8 client, under the driver's service account): the request's user with its token's extra
// attributes, options, request kind and resource, and the pod's managedFields, which the API server's
// field manager writes before mutating admission. Every webhook receives and decodes all of it, the no-op
// handler too.
func apiServerReview(t testing.TB, pod *corev1.Pod) []byte {
	t.Helper()
	pod = pod.DeepCopy()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// The fields Spark's client set: not those the API server defaulted or its admission plugins added.
	delete(doc, "status")
	delete(doc, "apiVersion")
	delete(doc, "kind")
	if spec, ok := doc["spec"].(map[string]any); ok {
		for _, f := range []string{"dnsPolicy", "enableServiceLinks", "preemptionPolicy", "priority", "schedulerName", "securityContext", "serviceAccount", "terminationGracePeriodSeconds", "tolerations"} {
			delete(spec, f)
		}
		volumes, _ := spec["volumes"].([]any)
		spec["volumes"] = slices.DeleteFunc(volumes, func(v any) bool {
			return strings.HasPrefix(v.(map[string]any)["name"].(string), "kube-api-access-")
		})
		containers, _ := spec["containers"].([]any)
		for _, c := range containers {
			c := c.(map[string]any)
			delete(c, "terminationMessagePath")
			delete(c, "terminationMessagePolicy")
			mounts, _ := c["volumeMounts"].([]any)
			c["volumeMounts"] = slices.DeleteFunc(mounts, func(m any) bool {
				return strings.HasPrefix(m.(map[string]any)["name"].(string), "kube-api-access-")
			})
		}
	}
	fields, err := json.Marshal(managedFieldSet(doc))
	if err != nil {
		t.Fatal(err)
	}
	created := metav1.NewTime(time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC))
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "fabric8-kubernetes-client", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &created, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: fields},
	}}
	req := podRequest(t, pod)
	req.Name = pod.Name
	req.RequestKind = &req.Kind
	req.RequestResource = &req.Resource
	req.DryRun = new(false)
	req.Options.Raw = []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)
	sa := "spark"
	req.UserInfo = authenticationv1.UserInfo{
		Username: "system:serviceaccount:" + pod.Namespace + ":" + sa,
		UID:      "0b8e3f4c-9d2a-4e6b-8f1c-2a3b4c5d6e7f",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + pod.Namespace, "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{
			"authentication.kubernetes.io/credential-id": {"JTI=7f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190"},
			"authentication.kubernetes.io/node-name":     {"ip-10-0-12-34.ec2.internal"},
			"authentication.kubernetes.io/node-uid":      {"1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"},
			"authentication.kubernetes.io/pod-name":      {"pi-5c0f4a93b1d2e7f8-driver"},
			"authentication.kubernetes.io/pod-uid":       {"6d1f0c2a-3b4e-4f5a-8b6c-7d8e9f0a1b2c"},
		},
	}
	return reviewBody(t, req)
}

// managedFieldSet is the fieldsV1 set of a JSON object as the field manager writes it: "f:<field>" per
// member, list elements keyed "k:{...}" by their mount path, port, uid or name, others "v:<value>".
func managedFieldSet(v any) map[string]any {
	out := map[string]any{}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			out["f:"+k] = managedFieldSet(c)
		}
	case []any:
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				b, _ := json.Marshal(e)
				out["v:"+string(b)] = map[string]any{}
				continue
			}
			var key string
			for _, k := range []string{"mountPath", "containerPort", "uid", "name"} {
				if val, ok := m[k]; ok {
					b, _ := json.Marshal(map[string]any{k: val})
					key = "k:" + string(b)
					break
				}
			}
			if key == "" {
				b, _ := json.Marshal(m)
				key = "v:" + string(b)
			}
			set := managedFieldSet(m)
			set["."] = map[string]any{}
			out[key] = set
		}
	}
	return out
}

// processCPU is the CPU time the process has used so far, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
