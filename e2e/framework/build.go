package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// EnsureControlPlaneBinaries runs hack/build-control-plane.sh, which returns at once when bin/control-plane
// holds the pinned versions, links them from the per-user cache in seconds, or builds them (minutes) on a
// fresh machine. A $SPARKPLACE_CONTROL_PLANE_BIN set by the caller is used as it is.
func EnsureControlPlaneBinaries() error {
	if os.Getenv("SPARKPLACE_CONTROL_PLANE_BIN") != "" {
		return nil
	}
	bin, err := BinDir()
	if err != nil {
		return err
	}
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "build-control-plane.sh"), bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build control plane: %w", err)
	}
	return nil
}

// BuildSparkplace returns $SPARKPLACE_BIN when set, else builds ./cmd/sparkplace of the module into
// dir/sparkplace and returns that path.
func BuildSparkplace(ctx context.Context, dir string, logf func(string, ...any)) (string, error) {
	return buildSparkplace(ctx, dir, logf, nil)
}

// BuildSparkplaceAsShipped is BuildSparkplace with the Dockerfile's build: static (CGO_ENABLED=0), -trimpath,
// no symbol tables. Benchmarks of the process's memory measure this binary.
func BuildSparkplaceAsShipped(ctx context.Context, dir string, logf func(string, ...any)) (string, error) {
	return buildSparkplace(ctx, dir, logf, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w")
}

func buildSparkplace(ctx context.Context, dir string, logf func(string, ...any), env []string, flags ...string) (string, error) {
	if bin := os.Getenv("SPARKPLACE_BIN"); bin != "" {
		return bin, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sparkplace")
	start := time.Now()
	args := append(append([]string{"build"}, flags...), "-o", bin, "./cmd/sparkplace")
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if env != nil {
		build.Env = append(os.Environ(), env...)
	}
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sparkplace: %w\n%s", err, out)
	}
	if logf != nil {
		logf("built sparkplace in %s", time.Since(start).Round(time.Millisecond))
	}
	return bin, nil
}
