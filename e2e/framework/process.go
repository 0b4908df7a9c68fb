package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Process is one child process of the control plane (or the webhook), running in its own process group, with
// its output in a log file.
type Process struct {
	// Name is a short name, e.g. "kube-apiserver"; the log is <dir>/<Name>.log.
	Name string
	// LogPath is the file that receives the process' stdout and stderr.
	LogPath string

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// spawnRequest asks the spawner thread to start a command.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

// startFromSpawner starts cmd from one OS thread that never exits. Linux delivers the parent-death signal when
// the *thread* that forked a child exits, not the process; starting every child from a locked thread that lives
// as long as the process makes Pdeathsig mean "when the test binary dies". (This is process-wide state by
// nature, hence the package-level variables.)
func startFromSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child.
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// startProcess starts binary with args, its output appended to dir/name.log. The child gets its own process
// group (so a terminal's Ctrl-C reaches only the test binary, which then stops the group cleanly) and, unless
// detached, SIGKILL as parent-death signal (so it dies with the test binary if that is killed or panics).
func startProcess(dir, name, binary string, args, env []string, detached bool) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := startFromSpawner
	if !detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	} else {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err says why the process exited, once Exited is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs the group. It returns once the
// process is reaped and no member of its group is left.
func (p *Process) Stop(grace time.Duration) error {
	pgid := p.Pid()
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// The leader is gone; anything it forked into its group must not outlive it either.
	if groupAlive(pgid) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		deadline := time.Now().Add(5 * time.Second)
		for groupAlive(pgid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process group %d of %s survives SIGKILL", pgid, p.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Tail returns the last n bytes of the process log, to explain a failure.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// groupAlive reports whether any process is left in process group pgid.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// Leftovers lists the processes (pid → command line) whose command line mentions a path inside dir. The
// control plane passes files of its directory to every child (data dir, certificates, kubeconfig), so
// Leftovers(cp.Dir) after Stop is the check that nothing outlived it.
func Leftovers(dir string) (map[int]string, error) {
	// The trailing slash keeps /tmp/x-1 from matching /tmp/x-12/... of another run.
	marker := filepath.Clean(dir) + "/"
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	found := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
			continue // gone meanwhile, or not ours
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(stat) {
			continue // exited, waiting to be reaped by a parent that is not us
		}
		found[pid] = string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '}))
	}
	return found, nil
}

// isZombie reads the state field of /proc/PID/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
