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

func runInitContainers(t *testing.T, tenants []tenant, pods []*corev1.Pod) {
	if os.Geteuid() != 0 {
		t.Skip("running the init container's command needs root (chown to other uids)")
	}
	for _, tool := range []string{"setpriv", "unshare", "mount", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (util-linux)", tool)
		}
	}
	// The directories a uid must traverse are 0755 as on a node (t.TempDir is 0700).
	base, err := os.MkdirTemp("", "sparkplace-nvme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	nvmeRoot := filepath.Join(base, "pv-disks", "local")
	onHost := func(hostPath string) string {
		return filepath.Join(nvmeRoot, strings.TrimPrefix(hostPath, "/pv-disks/local"))
	}

	localDirs := make([][]string, len(pods)) // per tenant, its local dirs on the "host"
	for i, pod := range pods {
		var podDir string
		for _, v := range pod.Spec.Volumes {
			if v.HostPath == nil {
				continue
			}
			// The kubelet makes a DirectoryOrCreate hostPath with os.MkdirAll(path, 0755), as root.
			if err := os.MkdirAll(onHost(v.HostPath.Path), 0o755); err != nil {
				t.Fatal(err)
			}
			if v.Name == placement.LocalDirsVolume {
				podDir = onHost(v.HostPath.Path)
			} else {
				localDirs[i] = append(localDirs[i], onHost(v.HostPath.Path))
			}
		}
		c := initContainer(t, pod)
		cmd := slices.Clone(c.Command)
		// The only change to the command: the pod's directory is where the test made it, not the mount path.
		if cmd[4] != c.VolumeMounts[0].MountPath {
			t.Fatalf("init command %q: argument 4 is not the mount path %s", cmd, c.VolumeMounts[0].MountPath)
		}
		cmd[4] = podDir
		podUID := "3f0c7a52-0000-4000-8000-00000000000" + strconv.Itoa(i)

		// Without CAP_CHOWN it cannot work: the capability is needed ...
		if out, err := runAsRoot(podUID, nil, cmd); err == nil {
			t.Errorf("%s: the init command succeeded without CAP_CHOWN:\n%s", pod.Name, out)
		}
		// ... and enough: root with CAP_CHOWN only, no new privileges.
		if out, err := runAsRoot(podUID, []string{"chown"}, cmd); err != nil {
			t.Fatalf("%s: init command: %v\n%s", pod.Name, err, out)
		}
		checkOwner(t, podDir, 0, 0, 0o700)
		if got, err := os.ReadFile(filepath.Join(podDir, placement.PodUIDFile)); err != nil || strings.TrimSpace(string(got)) != podUID {
			t.Errorf("%s: recorded pod UID %q (%v), want %s", pod.Name, got, err, podUID)
		}
		for _, d := range localDirs[i] {
			checkOwner(t, d, tenants[i].uid, tenants[i].gid, 0o700)
		}
		// A second run (the init container restarted) succeeds and changes nothing.
		if out, err := runAsRoot(podUID, []string{"chown"}, cmd); err != nil {
			t.Fatalf("%s: second run: %v\n%s", pod.Name, err, out)
		}
	}

	mnt := filepath.Join(base, "mnt")
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
