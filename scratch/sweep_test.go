package scratch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sparkplace/sparkplace/placement"
)

const node = "ip-10-0-1-17.ec2.internal"

// fakePods is the API server: pods by namespace/name. onGet, when set, runs before each Get (to create a pod
// "meanwhile"); listErr fails OnNode.
type fakePods struct {
	pods    map[string]*corev1.Pod
	onGet   func(f *fakePods, key string)
	listErr error
	gets    int
}

func (f *fakePods) OnNode(_ context.Context, n string) ([]corev1.Pod, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []corev1.Pod
	for _, p := range f.pods {
		if p.Spec.NodeName == n {
			out = append(out, *p)
		}
	}
	return out, nil
}

func (f *fakePods) Get(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	f.gets++
	key := namespace + "/" + name
	if f.onGet != nil {
		f.onGet(f, key)
	}
	return f.pods[key], nil
}

func pod(key, uid, nodeName string, phase corev1.PodPhase) *corev1.Pod {
	ns, name, _ := cutKey(key)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func cutKey(key string) (string, string, bool) {
	i := slices.Index([]byte(key), '/')
	return key[:i], key[i+1:], i >= 0
}

// dirSpec is one pod directory as the init container leaves it: the UID record (unless empty) and files.
type dirSpec struct {
	uid   string
	files map[string]string // path under the pod dir -> content
	age   time.Duration     // how long ago it last changed
}

func makeDir(t *testing.T, root, key string, d dirSpec, now time.Time) {
	t.Helper()
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if d.uid != "" {
		if err := os.WriteFile(filepath.Join(dir, placement.PodUIDFile), []byte(d.uid+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range d.files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if content == "<dir>" {
			if err := os.MkdirAll(full, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	when := now.Add(-d.age)
	_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, when, when) })
}

func TestSweep(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	shuffle := map[string]string{"spark-local-dir-1/blockmgr-1/0c/shuffle_0_1_0.data": "0123456789"}
	old := 2 * time.Hour
	cases := map[string]struct {
		pods        []*corev1.Pod
		dirs        map[string]dirSpec
		onGet       func(f *fakePods, key string)
		afterList   func(f *fakePods, root string)
		listErr     error
		wantRemoved []string
		// wantGone and wantKept are paths under the root, within kept pod directories, that the sweep removes
		// and leaves.
		wantGone, wantKept []string
		wantBytes          int64
		wantErr            bool
	}{
		"a running pod's directory stays, however old": {
			pods: []*corev1.Pod{pod("team-a/pi-exec-1", "u1", node, corev1.PodRunning)},
			dirs: map[string]dirSpec{"team-a/pi-exec-1": {uid: "u1", files: shuffle, age: old}},
		},
		"a deleted pod's directory goes, with its bytes": {
			dirs:        map[string]dirSpec{"team-a/pi-exec-2": {uid: "u2", files: shuffle, age: old}},
			wantRemoved: []string{"team-a/pi-exec-2"}, wantBytes: 10 + 3, // the shuffle file and the UID record
		},
		"an OOM-killed (Failed) executor's directory goes": {
			pods:        []*corev1.Pod{pod("team-a/pi-exec-3", "u3", node, corev1.PodFailed)},
			dirs:        map[string]dirSpec{"team-a/pi-exec-3": {uid: "u3", files: shuffle, age: old}},
			wantRemoved: []string{"team-a/pi-exec-3"}, wantBytes: 10 + 3,
		},
		"a directory within the grace period stays, pod or not": {
			dirs: map[string]dirSpec{"team-a/pi-exec-4": {uid: "u4", files: shuffle, age: time.Minute}},
		},
		"a pod the list missed (stale cache) but the API server has on this node keeps its directory": {
			dirs:  map[string]dirSpec{"team-a/pi-exec-5": {uid: "u5", age: old}},
			onGet: func(f *fakePods, key string) { f.pods[key] = pod(key, "u5", node, corev1.PodRunning) },
		},
		"a pending pod of that name (not bound yet) keeps the directory": {
			dirs:  map[string]dirSpec{"team-a/pi-driver": {uid: "old", age: old}},
			onGet: func(f *fakePods, key string) { f.pods[key] = pod(key, "new", "", corev1.PodPending) },
		},
		"a later pod of that name on another node does not keep an earlier pod's directory": {
			pods:        []*corev1.Pod{pod("team-a/pi-driver", "new", "another-node", corev1.PodRunning)},
			dirs:        map[string]dirSpec{"team-a/pi-driver": {uid: "old", files: shuffle, age: old}},
			wantRemoved: []string{"team-a/pi-driver"}, wantBytes: 10 + 4,
		},
		"an earlier pod's local dir, renamed aside by the init container of a running pod of the same name, goes": {
			pods: []*corev1.Pod{pod("team-a/pi-exec-1", "new", node, corev1.PodRunning)},
			dirs: map[string]dirSpec{"team-a/pi-exec-1": {uid: "new", age: old, files: map[string]string{
				"spark-local-dir-1/blockmgr-2/0d/shuffle_1_1_0.data":                                     "mine",
				placement.StaleLocalDirPrefix + "old-spark-local-dir-1/blockmgr-1/0c/shuffle_0_1_0.data": "0123456789",
			}}},
			wantGone:  []string{"team-a/pi-exec-1/" + placement.StaleLocalDirPrefix + "old-spark-local-dir-1"},
			wantKept:  []string{"team-a/pi-exec-1/spark-local-dir-1/blockmgr-2/0d/shuffle_1_1_0.data", "team-a/pi-exec-1/" + placement.PodUIDFile},
			wantBytes: 10,
		},
		"a pod deleted before its init container ran: only the kubelet's empty local dirs": {
			dirs:        map[string]dirSpec{"team-a/pi-exec-6": {files: map[string]string{"spark-local-dir-1": "<dir>", "spark-local-dir-2": "<dir>"}, age: old}},
			wantRemoved: []string{"team-a/pi-exec-6"},
		},
		"a directory that is not sparkplace's (the old shared layout's blockmgr dirs) stays": {
			dirs: map[string]dirSpec{"blockmgr-2f0c8f7e/0c": {files: map[string]string{"shuffle_0_1_0.data": "x"}, age: old}},
		},
		"an empty directory is not known to be sparkplace's (a blockmgr sub-directory made ahead of use)": {
			dirs: map[string]dirSpec{"blockmgr-2f0c8f7e/0d": {age: old}},
		},
		"a pod created during the sweep keeps its directory": {
			afterList: func(f *fakePods, root string) {
				f.pods["team-a/pi-exec-7"] = pod("team-a/pi-exec-7", "u7", node, corev1.PodRunning)
			},
			dirs: map[string]dirSpec{"team-a/pi-exec-7": {uid: "u7", age: old}},
		},
		"a pod created between the look and the removal gets its directory back": {
			dirs: map[string]dirSpec{"team-a/pi-driver": {uid: "old", files: shuffle, age: old}},
			onGet: func(f *fakePods, key string) {
				if f.gets == 2 { // the second look, after the directory went to the trash
					f.pods[key] = pod(key, "new", node, corev1.PodPending)
				}
			},
		},
		"nothing goes when the node's pods cannot be listed": {
			dirs:    map[string]dirSpec{"team-a/pi-exec-8": {uid: "u8", age: old}},
			listErr: errors.New("connection refused"), wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			f := &fakePods{pods: map[string]*corev1.Pod{}, onGet: tc.onGet, listErr: tc.listErr}
			for _, p := range tc.pods {
				f.pods[p.Namespace+"/"+p.Name] = p
			}
			for key, d := range tc.dirs {
				makeDir(t, root, key, d, now)
			}
			m := NewMetrics(nil)
			s := &Sweeper{Root: root, Node: node, Pods: f, GracePeriod: 10 * time.Minute, Metrics: m, Log: logr.Discard(), Now: func() time.Time { return now }}
			if tc.afterList != nil {
				s.AfterList = func(context.Context) { tc.afterList(f, root) }
			}
			res, err := s.Sweep(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Sweep() error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantRemoved, res.Removed); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			for key := range tc.dirs {
				_, err := os.Stat(filepath.Join(root, key))
				if gone := errors.Is(err, os.ErrNotExist); gone != slices.Contains(tc.wantRemoved, key) {
					t.Errorf("%s: gone %v, want gone %v", key, gone, !gone)
				}
			}
			for _, p := range tc.wantGone {
				if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there (%v)", p, err)
				}
			}
			for _, p := range tc.wantKept {
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s: %v, want it kept", p, err)
				}
			}
			if res.Bytes != tc.wantBytes || testutil.ToFloat64(m.BytesReclaimed) != float64(tc.wantBytes) {
				t.Errorf("bytes %d (metric %v), want %d", res.Bytes, testutil.ToFloat64(m.BytesReclaimed), tc.wantBytes)
			}
			if got := testutil.ToFloat64(m.DirsRemoved); got != float64(len(tc.wantRemoved)) {
				t.Errorf("dirs removed metric %v, want %d", got, len(tc.wantRemoved))
			}
			if tc.wantErr && testutil.ToFloat64(m.Errors.WithLabelValues(OpList)) != 1 {
				t.Errorf("list errors metric not counted")
			}
			if entries, _ := os.ReadDir(filepath.Join(root, trashDir)); len(entries) > 0 {
				t.Errorf("trash not empty: %v", entries)
			}
		})
	}
}

// TestSweepDoesNotFollowLinks: a job can leave a symbolic link to anything on the node in its local dir; the
// sweep removes the link, never its target, and does not count the target's bytes.
func TestSweepDoesNotFollowLinks(t *testing.T) {
	now := time.Now()
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("do not delete"), 0o600); err != nil {
		t.Fatal(err)
	}
	makeDir(t, root, "team-a/pi-exec-1", dirSpec{uid: "u1", files: map[string]string{"spark-local-dir-1": "<dir>"}, age: time.Hour}, now)
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(root, "team-a/pi-exec-1/spark-local-dir-1/link")); err != nil {
		t.Fatal(err)
	}
	s := &Sweeper{Root: root, Node: node, Pods: &fakePods{pods: map[string]*corev1.Pod{}}, GracePeriod: time.Minute, Metrics: NewMetrics(nil), Log: logr.Discard(),
		Now: func() time.Time { return now.Add(time.Hour) }}
	res, err := s.Sweep(context.Background())
	if err != nil || len(res.Removed) != 1 || res.Bytes != 3 {
		t.Fatalf("Sweep() = %+v, %v; want the directory removed, 3 bytes (the UID record only)", res, err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the link's target is gone: %v", err)
	}
}
