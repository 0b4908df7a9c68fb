package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profileLength is how long each CPU profile of a scheduling round runs: a round at full scale binds its
// executors in 4 to 9 s, so the profile holds the round and kwok's updates right after it.
const profileLength = 8 * time.Second

// startProfiles starts CPU profiles of kube-apiserver and kube-scheduler over the next profileLength; wait
// writes them to e.profileDir as <name>-kube-apiserver.pprof and <name>-kube-scheduler.pprof (read them with
// `go tool pprof`). Without a profile directory it does nothing.
func (e *Env) startProfiles(ctx context.Context, name string) (wait func() error) {
	if e.profileDir == "" {
		return func() error { return nil }
	}
	seconds := strconv.Itoa(int(profileLength / time.Second))
	api := func(ctx context.Context) ([]byte, error) {
		return e.CP.Client.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", seconds).DoRaw(ctx)
	}
	scheduler := func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.CP.SchedulerProfileURL+"?seconds="+seconds, nil)
		if err != nil {
			return nil, err
		}
		client := *e.insecure
		client.Timeout = profileLength + 30*time.Second
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.200s", resp.Status, b)
		}
		return b, err
	}
	errs := make(chan error, 2)
	for process, get := range map[string]func(context.Context) ([]byte, error){"kube-apiserver": api, "kube-scheduler": scheduler} {
		go func() {
			b, err := get(ctx)
			if err == nil {
				file := strings.NewReplacer(" ", "-").Replace(name) + "-" + process + ".pprof"
				err = os.WriteFile(filepath.Join(e.profileDir, file), b, 0o644)
			}
			if err != nil {
				err = fmt.Errorf("CPU profile of %s: %w", process, err)
			}
			errs <- err
		}()
	}
	return func() error { return errors.Join(<-errs, <-errs) }
}
