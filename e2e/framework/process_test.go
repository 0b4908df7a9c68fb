package framework

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// helperDirEnv switches the test binary into helper mode for TestChildrenDieWithTheTestBinary.
const helperDirEnv = "SPARKPLACE_FRAMEWORK_HELPER_DIR"

// marked links a system binary into dir, so that the command line of every process started from the link
// mentions dir and Leftovers(dir) finds it.
func marked(t *testing.T, dir, name, target string) string {
	t.Helper()
	link := filepath.Join(dir, name)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func waitNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := Leftovers(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStopKillsTheWholeGroup: a child that forked (here a shell running a background sleep) leaves nothing.
func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	sleeper := marked(t, dir, "sleeper", "/bin/sleep")
	sh := marked(t, dir, "sh", "/bin/sh")
	p, err := startProcess(dir, "shell", sh, []string{"-c", sleeper + " 300 & wait"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for left, _ := Leftovers(dir); len(left) < 2; left, _ = Leftovers(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("shell and sleeper not both started: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitNoLeftovers(t, dir)
}

// TestChildrenDieWithTheTestBinary: a test binary that dies without cleanups (go test's -timeout panic, a
// SIGKILL) takes its children with it through the parent-death signal. The test re-runs its own binary as
// that test binary.
func TestChildrenDieWithTheTestBinary(t *testing.T) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		if _, err := startProcess(dir, "sleeper", filepath.Join(dir, "sleeper"), []string{"300"}, nil, false); err != nil {
			os.Exit(2)
		}
		os.Exit(3) // no cleanup, no Stop
	}
	dir := t.TempDir()
	marked(t, dir, "sleeper", "/bin/sleep")
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildrenDieWithTheTestBinary$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 3 {
		t.Fatalf("helper: %v, want exit status 3", err)
	}
	waitNoLeftovers(t, dir)
}

// TestDetachedChildrenSurvive: the demo's processes outlive the command that started them, and StopPIDFile
// stops them from the pid file.
func TestDetachedChildrenSurvive(t *testing.T) {
	dir := t.TempDir()
	sleeper := marked(t, dir, "sleeper", "/bin/sleep")
	cp := &ControlPlane{Dir: dir, opts: Options{Detached: true}}
	if _, err := cp.StartProcess("sleeper", sleeper, []string{"300"}, nil); err != nil {
		t.Fatal(err)
	}
	if left, err := Leftovers(dir); err != nil || len(left) != 1 {
		t.Fatalf("Leftovers = %v, %v; want the detached sleeper", left, err)
	}
	if err := StopPIDFile(dir); err != nil {
		t.Fatal(err)
	}
	waitNoLeftovers(t, dir)
	if _, err := os.Stat(filepath.Join(dir, PIDFile)); !os.IsNotExist(err) {
		t.Errorf("pid file still there: %v", err)
	}
}
