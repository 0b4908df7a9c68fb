package scratch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sparkplace/sparkplace/placement"
)

// Pods is what a sweep reads of the API server.
type Pods interface {
	// OnNode lists the pods bound to node (a field selector on spec.nodeName). It may lag behind the API
	// server (a watch cache): every directory it does not account for is checked with Get before it goes.
	OnNode(ctx context.Context, node string) ([]corev1.Pod, error)
	// Get reads one pod from the API server itself; nil when it does not exist.
	Get(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// trashDir, under the root, holds directories being removed: a directory is first renamed there (atomic, so
// a half-removed directory never loses its UID record in place), then removed. Its leading dot keeps it
// apart from namespace names.
const trashDir = ".sparkplace-trash"

// Sweeper removes the scratch directories of one node's gone pods. Fields other than AfterList are required.
type Sweeper struct {
	// Root is the NVMe root the pods' directories are under (config nvme.hostPath as the agent sees it).
	Root string
	// Node is the node the agent runs on.
	Node string
	Pods Pods
	// GracePeriod: a directory changed more recently than this is kept whatever the API server says, which
	// covers a pod created, bound and started between the list and the look at its directory.
	GracePeriod time.Duration
	Metrics     *Metrics
	Log         logr.Logger
	Now         func() time.Time
	// AfterList, when set, runs between listing the node's pods and reading the directories: a seam for tests
	// of a pod created during a sweep.
	AfterList func(context.Context)
}

// Result is what one sweep did.
type Result struct {
	// Removed are the removed pod directories, <namespace>/<pod>.
	Removed []string
	// Kept counts the pod directories kept: of live pods, or within the grace period.
	Kept int
	// Bytes is the size of the regular files removed.
	Bytes int64
}

// Sweep looks at every <root>/<namespace>/<pod> directory once and removes those of pods that are gone. It
// returns an error only when it could not list the node's pods (then it removes nothing); failures on single
// directories are logged, counted and left for the next sweep.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	pods, err := s.Pods.OnNode(ctx, s.Node)
	if err != nil {
		s.Metrics.Errors.WithLabelValues(OpList).Inc()
		return res, fmt.Errorf("listing the pods of node %s: %w", s.Node, err)
	}
	live := map[string]bool{}
	for i := range pods {
		if !terminated(&pods[i]) {
			live[pods[i].Namespace+"/"+pods[i].Name] = true
		}
	}
	if s.AfterList != nil {
		s.AfterList(ctx)
	}
	s.emptyTrash(&res)
	namespaces, err := os.ReadDir(s.Root)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) { // no pod has had a directory here yet
			s.fail(OpRead, err, "reading the NVMe root", "root", s.Root)
		}
		return res, nil
	}
	for _, ns := range namespaces {
		if !ns.IsDir() || len(validation.IsDNS1123Label(ns.Name())) > 0 {
			continue
		}
		podDirs, err := os.ReadDir(filepath.Join(s.Root, ns.Name()))
		if err != nil {
			s.fail(OpRead, err, "reading a namespace's directory", "namespace", ns.Name())
			continue
		}
		for _, p := range podDirs {
			if !p.IsDir() || len(validation.IsDNS1123Subdomain(p.Name())) > 0 {
				continue
			}
			if live[ns.Name()+"/"+p.Name()] {
				res.Kept++
				s.purgeStale(ns.Name(), p.Name(), &res)
				continue
			}
			s.consider(ctx, ns.Name(), p.Name(), &res)
		}
	}
	return res, nil
}

// consider removes the directory of namespace/name unless it is not sparkplace's, is too fresh, or its pod
// turns out to be live.
func (s *Sweeper) consider(ctx context.Context, namespace, name string, res *Result) {
	dir := filepath.Join(s.Root, namespace, name)
	d, err := inspect(dir)
	if err != nil {
		s.fail(OpRead, err, "reading a pod's directory", "dir", dir)
		return
	}
	if !d.ours {
		s.Log.V(1).Info("not a sparkplace pod directory, left alone", "dir", dir)
		return
	}
	if s.Now().Sub(d.changed) < s.GracePeriod {
		res.Kept++
		return
	}
	keep, err := s.podKeeps(ctx, namespace, name, d.uid)
	if err != nil {
		s.fail(OpGet, err, "reading a pod", "pod", namespace+"/"+name)
		return
	}
	if keep {
		res.Kept++
		s.purgeStale(namespace, name, res)
		return
	}
	if err := os.MkdirAll(filepath.Join(s.Root, trashDir), 0o700); err != nil {
		s.fail(OpRemove, err, "making the trash directory")
		return
	}
	trashed := filepath.Join(s.Root, trashDir, namespace+"_"+name+"_"+strconv.FormatInt(s.Now().UnixNano(), 10))
	if err := os.Rename(dir, trashed); err != nil {
		s.fail(OpRemove, err, "moving a pod's directory to the trash", "dir", dir)
		return
	}
	// A pod of that name may have been created since the look above: look again, and give it its directory
	// back if it may run here.
	if keep, err := s.podKeeps(ctx, namespace, name, d.uid); err != nil || keep {
		if rerr := os.Rename(trashed, dir); rerr != nil {
			s.fail(OpRemove, rerr, "putting a pod's directory back", "dir", dir)
		}
		if err != nil {
			s.fail(OpGet, err, "reading a pod", "pod", namespace+"/"+name)
		} else {
			res.Kept++
		}
		return
	}
	if n, err := s.purge(trashed); err == nil {
		s.Metrics.DirsRemoved.Inc()
		res.Removed = append(res.Removed, namespace+"/"+name)
		res.Bytes += n
		s.Log.Info("removed the scratch directory of a gone pod", "pod", namespace+"/"+name, "uid", d.uid, "bytes", n)
	}
}

// podKeeps tells whether the pod namespace/name, as the API server has it now, may use its directory: it
// exists, has not terminated, and is bound to this node or not bound yet. A pod of that name on another node
// is a later pod than the one the directory was made for (a pod never changes node), unless the directory
// records its UID.
func (s *Sweeper) podKeeps(ctx context.Context, namespace, name, recordedUID string) (bool, error) {
	pod, err := s.Pods.Get(ctx, namespace, name)
	if err != nil || pod == nil || terminated(pod) {
		return false, err
	}
	return pod.Spec.NodeName == s.Node || pod.Spec.NodeName == "" || string(pod.UID) == recordedUID, nil
}

// purgeStale removes from a kept pod's directory the local dirs of an earlier pod of the same name, which the
// kept pod's init container renamed aside (placement.StaleLocalDirPrefix) and the kept pod never mounts.
func (s *Sweeper) purgeStale(namespace, name string, res *Result) {
	dir := filepath.Join(s.Root, namespace, name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // gone meanwhile, or unreadable: consider and the next sweep look again
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), placement.StaleLocalDirPrefix) {
			continue
		}
		if n, err := s.purge(filepath.Join(dir, e.Name())); err == nil {
			res.Bytes += n
			s.Log.Info("removed an earlier pod's local dir from the directory of a pod of the same name", "pod", namespace+"/"+name, "dir", e.Name(), "bytes", n)
		}
	}
}

// emptyTrash removes what an interrupted sweep left in the trash.
func (s *Sweeper) emptyTrash(res *Result) {
	entries, err := os.ReadDir(filepath.Join(s.Root, trashDir))
	if err != nil {
		return // none yet
	}
	for _, e := range entries {
		if n, err := s.purge(filepath.Join(s.Root, trashDir, e.Name())); err == nil {
			s.Metrics.DirsRemoved.Inc()
			res.Bytes += n
		}
	}
}

// purge removes a directory, counting its bytes.
func (s *Sweeper) purge(dir string) (int64, error) {
	var n int64
	// Sizes are read without following symbolic links: a link a job left points anywhere on the node.
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		s.fail(OpRemove, err, "removing a pod's directory", "dir", dir)
		return 0, err
	}
	s.Metrics.BytesReclaimed.Add(float64(n))
	return n, nil
}

func (s *Sweeper) fail(op string, err error, msg string, kv ...any) {
	s.Metrics.Errors.WithLabelValues(op).Inc()
	s.Log.Error(err, msg, kv...)
}

// Run sweeps every interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := s.Sweep(ctx)
		if err != nil {
			s.Log.Error(err, "sweep failed; nothing removed")
		} else if len(res.Removed) > 0 {
			s.Log.Info("sweep", "removed", len(res.Removed), "kept", res.Kept, "bytes", res.Bytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// podDir is what a sweep reads of one pod's directory.
type podDir struct {
	// uid is the pod UID the init container recorded; empty when it has not run.
	uid string
	// ours: the directory is sparkplace's: it has the UID record, or holds nothing but the empty local dirs
	// the kubelet made for a pod that never started.
	ours bool
	// changed is the latest change of the directory, its record or its entries.
	changed time.Time
}

func inspect(dir string) (podDir, error) {
	var d podDir
	info, err := os.Lstat(dir)
	if err != nil {
		return d, err
	}
	d.changed = info.ModTime()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return d, err
	}
	recorded := slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == placement.PodUIDFile && e.Type().IsRegular() })
	// An empty directory is not known to be sparkplace's: a Spark executor of the old shared layout makes its
	// blockmgr sub-directories ahead of writing to them.
	d.ours = len(entries) > 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return d, err
		}
		if info.ModTime().After(d.changed) {
			d.changed = info.ModTime()
		}
		switch {
		case e.Name() == placement.PodUIDFile && recorded:
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return d, err
			}
			d.uid = strings.TrimSpace(string(raw))
		case recorded:
		case !e.IsDir() || !strings.HasPrefix(e.Name(), placement.LocalDirVolumePrefix):
			d.ours = false
		default:
			// Without the record, only the empty local dirs the kubelet made for a pod that never started.
			if sub, err := os.ReadDir(filepath.Join(dir, e.Name())); err != nil || len(sub) > 0 {
				d.ours = false
			}
		}
	}
	return d, nil
}

// terminated: the pod's containers will not run again.
func terminated(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
