package charts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Defaults of Render, the names the kustomize overlays use.
const (
	ReleaseName = "sparkplace"
	Namespace   = "sparkplace"
)

//go:embed all:sparkplace
var tree embed.FS

// Load returns the chart as Helm loads it from its directory.
func Load() (*chart.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(tree, "sparkplace", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(p, "sparkplace/ci/") {
			return nil // lint values, left out of the package by .helmignore
		}
		b, err := tree.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: strings.TrimPrefix(p, "sparkplace/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the chart: %w", err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	return c, nil
}

// Options of Render.
type Options struct {
	// Values are merged over values.yaml, like `helm template --values`.
	Values map[string]any
	// ReleaseName defaults to "sparkplace", Namespace to "sparkplace".
	ReleaseName, Namespace string
}

// Render renders the chart like `helm template --include-crds` (values checked against values.schema.json)
// and returns its objects sorted by kind and name. NOTES.txt is not an object and is left out.
func Render(opts Options) ([]*unstructured.Unstructured, error) {
	if opts.ReleaseName == "" {
		opts.ReleaseName = ReleaseName
	}
	if opts.Namespace == "" {
		opts.Namespace = Namespace
	}
	c, err := Load()
	if err != nil {
		return nil, err
	}
	vals, err := util.ToRenderValuesWithSchemaValidation(c, opts.Values,
		common.ReleaseOptions{Name: opts.ReleaseName, Namespace: opts.Namespace, IsInstall: true, Revision: 1},
		common.DefaultCapabilities, false)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	// The CRDs in crds/ are not templates: Helm applies them as they are, before the rest.
	for _, crd := range c.CRDObjects() {
		files[crd.Filename] = string(crd.File.Data)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*unstructured.Unstructured
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(files[name])), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(u.Object) == 0 {
				continue // a document the values switched off
			}
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetKind() != out[j].GetKind() {
			return out[i].GetKind() < out[j].GetKind()
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out, nil
}
