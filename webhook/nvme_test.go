package webhook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// tenant is one Spark job's executor on the shared NVMe node.
type tenant struct {
	namespace, fixture string
	uid, gid           int
}

// placedScratch is what the golden file shows of a placed nvme pod: its host directories and how its init
// container is called (the script itself is in the pod goldens).
type placedScratch struct {
	Pod         string            `json:"pod"`
	HostPaths   map[string]string `json:"hostPaths"`
	InitCommand []string          `json:"initCommand"`
}

// TestTwoTenantsOnOneNode places executors of two tenants, an apache/spark job running as 185 and an EMR job
// running as 999, as they would land on one NVMe node: their host directories are disjoint and none is the
// NVMe root. Then, in a temp dir standing in for the NVMe root, it creates each hostPath as the kubelet does
// and runs each pod's init container command as root with CAP_CHOWN only (setpriv), and checks as the two
// uids (each local dir bind-mounted as the container sees it, in a private mount namespace) that each can
// write its own local dirs and cannot enter the other's.
func TestTwoTenantsOnOneNode(t *testing.T) {
	placer := newTestPlacer(t, policies.Options{})
	tenants := []tenant{
		{namespace: "team-a", fixture: "spark-3.5-executor", uid: 185, gid: 185},
		{namespace: "team-emr", fixture: "spark-4.0-executor", uid: 999, gid: 1000},
	}
	pods := make([]*corev1.Pod, len(tenants))
	var golden []placedScratch
	seen := map[string]string{} // host path -> pod
	for i, tn := range tenants {
		pod := withProfile(readFixture(t, tn.fixture), "nvme")
		pod.Namespace = tn.namespace
		if _, err := placer.Place(context.Background(), pod, tn.namespace, "CREATE"); err != nil {
			t.Fatal(err)
		}
		pods[i] = pod
		s := placedScratch{Pod: tn.namespace + "/" + pod.Name, HostPaths: map[string]string{}, InitCommand: initContainer(t, pod).Command[3:]}
		for _, v := range pod.Spec.Volumes {
			if v.HostPath == nil {
				continue
			}
			s.HostPaths[v.Name] = v.HostPath.Path
			if v.HostPath.Path == "/pv-disks/local" || !strings.HasPrefix(v.HostPath.Path, "/pv-disks/local/"+tn.namespace+"/"+pod.Name) {
				t.Errorf("%s: volume %s at %s, want under /pv-disks/local/%s/%s", s.Pod, v.Name, v.HostPath.Path, tn.namespace, pod.Name)
			}
			for p, owner := range seen {
				if owner != s.Pod && (strings.HasPrefix(p+"/", v.HostPath.Path+"/") || strings.HasPrefix(v.HostPath.Path+"/", p+"/")) {
					t.Errorf("%s's %s and %s's %s overlap", s.Pod, v.HostPath.Path, owner, p)
				}
			}
			seen[v.HostPath.Path] = s.Pod
		}
		golden = append(golden, s)
	}
	out, err := yaml.Marshal(golden)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "two-tenants-nvme", out)

	runInitContainers(t, tenants, pods)
}

func initContainer(t *testing.T, pod *corev1.Pod) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "sparkplace-chown-local-dirs" })
	if i < 0 {
		t.Fatalf("%s: no init container", pod.Name)
	}
	return pod.Spec.InitContainers[i]
}

// nvmeHost is a temp dir standing in for an NVMe node: the NVMe root (/pv-disks/local) under it, 0755 as on
// a node (t.TempDir is 0700, which no uid but root could traverse).
type nvmeHost struct {
	base, root string
}

func newNVMeHost(t *testing.T) *nvmeHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the init container's command needs root (chown to other uids)")
	}
	for _, tool := range []string{"setpriv", "unshare", "mount", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (util-linux)", tool)
		}
	}
	base, err := os.MkdirTemp("", "sparkplace-nvme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return &nvmeHost{base: base, root: filepath.Join(base, "pv-disks", "local")}
}

// onHost maps a hostPath of the pod to the temp dir.
func (h *nvmeHost) onHost(hostPath string) string {
	return filepath.Join(h.root, strings.TrimPrefix(hostPath, "/pv-disks/local"))
}

// runInit does what the kubelet and the runtime do with the placed pod: it makes each hostPath volume as a
// DirectoryOrCreate hostPath is made (os.MkdirAll(path, 0755), as root), then runs the init container's own
// command as root with CAP_CHOWN only, its pod directory argument pointed at the temp dir (the only change).
// It checks the result and returns the pod's local dirs on the host.
func (h *nvmeHost) runInit(t *testing.T, pod *corev1.Pod, podUID string, tn tenant) []string {
	t.Helper()
	var podDir string
	for _, v := range pod.Spec.Volumes {
		if v.Name == placement.LocalDirsVolume {
			podDir = h.onHost(v.HostPath.Path)
		}
	}
	var localDirs []string
	for _, v := range pod.Spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		if err := os.MkdirAll(h.onHost(v.HostPath.Path), 0o755); err != nil {
			t.Fatal(err)
		}
		if dir := h.onHost(v.HostPath.Path); v.Name != placement.LocalDirsVolume && strings.HasPrefix(dir, podDir+"/") {
			localDirs = append(localDirs, dir)
		}
	}
	c := initContainer(t, pod)
	cmd := slices.Clone(c.Command)
	if cmd[4] != c.VolumeMounts[0].MountPath {
		t.Fatalf("init command %q: argument 4 is not the mount path %s", cmd, c.VolumeMounts[0].MountPath)
	}
	cmd[4] = podDir

	// Without CAP_CHOWN it cannot work: the capability is needed ...
	if out, err := runAsRoot(podUID, nil, cmd); err == nil {
		t.Errorf("%s: the init command succeeded without CAP_CHOWN:\n%s", pod.Name, out)
	}
	// ... and enough: root with CAP_CHOWN only, no new privileges. A second run (a restarted init container)
	// succeeds too.
	for range 2 {
		if out, err := runAsRoot(podUID, []string{"chown"}, cmd); err != nil {
			t.Fatalf("%s: init command: %v\n%s", pod.Name, err, out)
		}
	}
	checkOwner(t, podDir, 0, 0, 0o700)
	if got, err := os.ReadFile(filepath.Join(podDir, placement.PodUIDFile)); err != nil || strings.TrimSpace(string(got)) != podUID {
		t.Errorf("%s: recorded pod UID %q (%v), want %s", pod.Name, got, err, podUID)
	}
	for _, d := range localDirs {
		checkOwner(t, d, tn.uid, tn.gid, 0o700)
	}
	return localDirs
}

func runInitContainers(t *testing.T, tenants []tenant, pods []*corev1.Pod) {
	h := newNVMeHost(t)
	localDirs := make([][]string, len(pods)) // per tenant, its local dirs on the host
	for i, pod := range pods {
		localDirs[i] = h.runInit(t, pod, "3f0c7a52-0000-4000-8000-00000000000"+strconv.Itoa(i), tenants[i])
	}
	mnt := filepath.Join(h.base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, tn := range tenants {
		for _, d := range localDirs[i] {
			if out, err := runAsUser(tn, d, mnt, `mkdir "$D/blockmgr-1" && echo shuffle > "$D/blockmgr-1/shuffle_0_0_0.data" && ls "$D"`); err != nil {
				t.Errorf("uid %d cannot use its own local dir %s: %v\n%s", tn.uid, d, err, out)
			}
		}
		other := localDirs[1-i][0]
		for _, attempt := range []string{`ls "$D"`, `echo x > "$D/stolen"`, `cat "$D/blockmgr-1/shuffle_0_0_0.data"`} {
			if out, err := runAsUser(tn, other, mnt, attempt); err == nil || !strings.Contains(out, "Permission denied") {
				t.Errorf("uid %d reached the other tenant's %s with %s: err %v\n%s", tn.uid, other, attempt, err, out)
			}
		}
	}
}

// TestEarlierPodOfTheSameName: a pod that reuses the name of an earlier pod (a resubmitted application with a
// fixed executor name prefix, a recreated driver) may land on the node before the node agent removed the
// earlier pod's directory. Its local dirs are empty all the same: the earlier pod's (owned by Spark's user,
// on which root holding only CAP_CHOWN has no rights) are renamed aside for the agent, out of the new pod's
// reach.
func TestEarlierPodOfTheSameName(t *testing.T) {
	placer := newTestPlacer(t, policies.Options{})
	pod := withProfile(readFixture(t, "spark-3.5-executor"), "nvme")
	if _, err := placer.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
		t.Fatal(err)
	}
	spark := tenant{uid: 185, gid: 185}
	const earlierUID = "3f0c7a52-0000-4000-8000-000000000010"
	h := newNVMeHost(t)
	mnt := filepath.Join(h.base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := h.runInit(t, pod, earlierUID, spark)
	for _, d := range dirs {
		if out, err := runAsUser(spark, d, mnt, `mkdir "$D/blockmgr-1" && echo shuffle > "$D/blockmgr-1/shuffle_0_0_0.data"`); err != nil {
			t.Fatalf("the earlier pod writes its local dir %s: %v\n%s", d, err, out)
		}
	}
	if again := h.runInit(t, pod, "3f0c7a52-0000-4000-8000-000000000011", spark); !slices.Equal(again, dirs) {
		t.Fatalf("local dirs %v, then %v", dirs, again)
	}
	for _, d := range dirs {
		if entries, err := os.ReadDir(d); err != nil || len(entries) > 0 {
			t.Errorf("the later pod's %s holds %v (%v), want it empty", d, entries, err)
		}
		if out, err := runAsUser(spark, d, mnt, `ls -A "$D"`); err != nil || out != "" {
			t.Errorf("the later pod lists its %s: %q, %v", d, out, err)
		}
		stale := filepath.Join(filepath.Dir(d), placement.StaleLocalDirPrefix+earlierUID+"-"+filepath.Base(d))
		if got, err := os.ReadFile(filepath.Join(stale, "blockmgr-1", "shuffle_0_0_0.data")); err != nil || string(got) != "shuffle\n" {
			t.Errorf("the earlier pod's files in %s: %q, %v", stale, got, err)
		}
	}
}

// runAsRoot runs cmd as root holding only caps (and no new privileges), with POD_UID set as the downward API
// sets it.
func runAsRoot(podUID string, caps []string, cmd []string) (string, error) {
	bounding := "-all"
	for _, c := range caps {
		bounding += ",+" + c
	}
	args := append([]string{"--reuid=0", "--regid=0", "--clear-groups", "--inh-caps=-all", "--bounding-set=" + bounding, "--no-new-privs", "--"}, cmd...)
	c := exec.Command("setpriv", args...)
	c.Env = []string{"POD_UID=" + podUID, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := c.CombinedOutput()
	return string(out), err
}

// runAsUser runs script as the tenant's uid and gid with dir bind-mounted at mountPoint ($D), as a
// container sees its hostPath volume, in a mount namespace of its own.
func runAsUser(tn tenant, dir, mountPoint, script string) (string, error) {
	c := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2" && exec setpriv --reuid="$3" --regid="$4" --clear-groups --no-new-privs env D="$2" sh -c "$5"`,
		"sh", dir, mountPoint, strconv.Itoa(tn.uid), strconv.Itoa(tn.gid), script)
	out, err := c.CombinedOutput()
	return string(out), err
}

func checkOwner(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s: %v owned by %d:%d, want a directory %v owned by %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// TestUserHostPathIsNeverMountedOrChowned places a pod that brings its own hostPath local dir (say another
// pod's blockmgr directory) beside one of Spark's emptyDirs: only the emptyDir moves, the init container
// mounts only the pod's own directory, and running its command (as TestTwoTenantsOnOneNode does) leaves the
// user's directory as it was.
func TestUserHostPathIsNeverMountedOrChowned(t *testing.T) {
	placer := newTestPlacer(t, policies.Options{})
	pod := withProfile(readFixture(t, "spark-3.5-executor-hostpath"), "nvme")
	// A second local dir that Spark made: this one is sparkplace's to move.
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "spark-local-dir-2", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	spark := &pod.Spec.Containers[len(pod.Spec.Containers)-1]
	spark.VolumeMounts = append(spark.VolumeMounts, corev1.VolumeMount{Name: "spark-local-dir-2", MountPath: "/var/data/spark-2"})
	out, err := placer.Place(context.Background(), pod, pod.Namespace, "CREATE")
	if err != nil {
		t.Fatal(err)
	}
	user := pod.Spec.Volumes[slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "spark-local-dir-1" })]
	if user.HostPath == nil || user.HostPath.Path != "/pv-disks/local/blockmgr-victim" {
		t.Errorf("the user's hostPath changed: %+v", user.VolumeSource)
	}
	if !slices.ContainsFunc(out.Respected, func(s string) bool { return strings.Contains(s, "user's hostPath /pv-disks/local/blockmgr-victim") }) {
		t.Errorf("the annotation does not say the user's volume was left alone: %q", out.Respected)
	}
	c := initContainer(t, pod)
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != placement.LocalDirsVolume {
		t.Errorf("init container mounts %+v, want only %s", c.VolumeMounts, placement.LocalDirsVolume)
	}
	if slices.Contains(c.Command, "spark-local-dir-1") || !slices.Contains(c.Command, "spark-local-dir-2") {
		t.Errorf("init command %q: want spark-local-dir-2 only", c.Command[3:])
	}

	h := newNVMeHost(t)
	victim := h.onHost("/pv-disks/local/blockmgr-victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(victim, "shuffle_0_1_0.data")
	if err := os.WriteFile(data, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 999, 1000); err != nil {
		t.Fatal(err)
	}
	if dirs := h.runInit(t, pod, "3f0c7a52-0000-4000-8000-000000000009", tenant{uid: 185, gid: 185}); len(dirs) != 1 || filepath.Base(dirs[0]) != "spark-local-dir-2" {
		t.Errorf("local dirs prepared: %v, want spark-local-dir-2 only", dirs)
	}
	checkOwner(t, victim, 0, 0, 0o755)
	if fi, err := os.Stat(data); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 999 {
		t.Errorf("the user's file changed hands: %v %v", fi, err)
	}
}
