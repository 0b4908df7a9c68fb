package manifests

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Overlays of this package, the argument of Render.
const (
	// OverlaySelfSigned is the install where the webhook manages its own CA.
	OverlaySelfSigned = "self-signed"
	// OverlayCertManager is the install where cert-manager issues the serving certificate.
	OverlayCertManager = "cert-manager"
	// OverlayMonitoring is the ServiceMonitor, alert rules and Grafana dashboard, applied beside either.
	OverlayMonitoring = "monitoring"
	// OverlayNodeAgent is the NVMe node agent, installed beside either webhook overlay.
	OverlayNodeAgent = "node-agent"
)

// LabelPart and PartJobs mark the job-run part of the install (manifests/base/jobs): the CRDs, the
// controller, the emr-containers API and their RBAC.
const (
	LabelPart = "sparkplace.io/part"
	PartJobs  = "jobs"
)

//go:embed base overlays
var tree embed.FS

// Render builds overlays/<overlay> like `kubectl kustomize` and returns its objects in kustomize's order.
func Render(overlay string) ([]*unstructured.Unstructured, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := tree.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/", p), b)
	})
	if err != nil {
		return nil, fmt.Errorf("copying the manifests: %w", err)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, path.Join("/overlays", overlay))
	if err != nil {
		return nil, fmt.Errorf("rendering overlay %s: %w", overlay, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		// Through JSON rather than r.Map(): kustomize's maps hold Go ints, unstructured wants int64.
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("rendering overlay %s: %s: %w", overlay, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("rendering overlay %s: %s: %w", overlay, r.CurId(), err)
		}
		out = append(out, u)
	}
	return out, nil
}
