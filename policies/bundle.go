package policies

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"sigs.k8s.io/yaml"
)

// embedded is the default bundle, a standard OPA bundle: Rego files in directories named after their package
// (sparkplace/placement/) and the config defaults as the data file at the path OPA loads them to
// (sparkplace/config/data.yaml is data.sparkplace.config). Its files are named policies/<path> in messages,
// the path a developer finds them at.
//
//go:embed bundle
var embedded embed.FS

const (
	embeddedDir        = "bundle"
	embeddedNamePrefix = "policies/"
	defaultConfigPath  = "bundle/sparkplace/config/data.yaml"
)

// source is one Rego file: the name it is reported under (file:line in errors) and its text.
type source struct {
	// base is the file's base name; a policy-dir file replaces the embedded file with the same base name.
	base string
	name string
	text []byte
}

func (s source) isTest() bool { return strings.HasSuffix(s.base, "_test.rego") }

// embedded reports whether the file comes from the embedded bundle rather than the policy dir.
func (s source) embedded() bool { return strings.HasPrefix(s.name, embeddedNamePrefix+embeddedDir+"/") }

// sources is a loaded, not yet compiled, bundle: the Rego files and the merged config.
type sources struct {
	files  []source // sorted by base name
	config map[string]any
	// custom is the policy dir's data, data.sparkplace.custom.
	custom map[string]any
	hash   string
	// replaced are the names of the embedded files the policy dir replaces.
	replaced []string
}

// data is the document the policies see as data.
func (s *sources) data() map[string]any {
	root := map[string]any{"config": copyConfig(s.config)}
	if s.custom != nil {
		root[customDataKey] = copyConfig(s.custom)
	}
	return map[string]any{"sparkplace": root}
}

// customDataKey is where a policy dir's data files go: data.sparkplace.custom.
const customDataKey = "custom"

// dataFileNames are the data files of a policy dir, as in an OPA bundle.
var dataFileNames = []string{"data.json", "data.yaml", "data.yml"}

// loadPolicyDir reads a policy dir as OPA reads a directory: every *.rego file, at any depth (one named like an
// embedded file replaces it, its name recorded in replaced), and every data.json/data.yaml, its content placed
// at the data path of its directory (dir/sparkplace/custom/data.yaml is data.sparkplace.custom). Data must lie
// under data.sparkplace.custom: the config comes from --config only. Names starting with "." are skipped, so
// a ConfigMap volume's ..data and timestamped directories are not read twice. It returns
// data.sparkplace.custom.
func loadPolicyDir(dir string, byBase map[string]source, replaced *[]string) (map[string]any, error) {
	fromDir := map[string]string{} // base name -> the dir file, to refuse two of one name
	data := map[string]any{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case e.IsDir():
			return nil
		case strings.HasSuffix(e.Name(), ".rego"):
			if other, dup := fromDir[e.Name()]; dup {
				return fmt.Errorf("%s and %s: two policy files named %s (a file replaces the embedded one by name)", other, p, e.Name())
			}
			fromDir[e.Name()] = p
			text, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if prev, ok := byBase[e.Name()]; ok {
				*replaced = append(*replaced, prev.name)
			}
			byBase[e.Name()] = source{base: e.Name(), name: p, text: text}
		case slices.Contains(dataFileNames, e.Name()):
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			doc, err := parseConfig(p, raw)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, filepath.Dir(p))
			if err != nil {
				return err
			}
			var at []string
			if rel != "." {
				at = strings.Split(filepath.ToSlash(rel), "/")
			}
			for i := len(at) - 1; i >= 0; i-- {
				doc = map[string]any{at[i]: doc}
			}
			if err := checkCustomData(doc); err != nil {
				return fmt.Errorf("data file %s: %w", p, err)
			}
			if err := mergeData(data, doc, nil); err != nil {
				return fmt.Errorf("data file %s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading policy dir: %w", err)
	}
	root, _ := data["sparkplace"].(map[string]any)
	custom, _ := root[customDataKey].(map[string]any)
	return custom, nil
}

// checkCustomData accepts a data document only when everything in it lies under data.sparkplace.custom.
func checkCustomData(doc map[string]any) error {
	const want = "its content must lie under data.sparkplace.custom: put it in sparkplace/custom/data.yaml of the policy dir (or nest it under sparkplace: custom:)"
	for key, v := range doc {
		root, ok := v.(map[string]any)
		if key != "sparkplace" || !ok {
			return fmt.Errorf("it sets data.%s; %s", key, want)
		}
		for key, v := range root {
			if _, ok := v.(map[string]any); key != customDataKey || !ok {
				return fmt.Errorf("it sets data.sparkplace.%s; %s, as an object", key, want)
			}
		}
	}
	return nil
}

// mergeData deep-merges two data documents as OPA merges data files: objects key by key; two files giving one
// key different non-object values is an error.
func mergeData(base, add map[string]any, at []string) error {
	for key, v := range add {
		path := append(slices.Clone(at), key)
		bm, bIsMap := base[key].(map[string]any)
		am, aIsMap := v.(map[string]any)
		switch _, exists := base[key]; {
		case !exists:
			base[key] = v
		case bIsMap && aIsMap:
			if err := mergeData(bm, am, path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("data.%s is set by another data file of the policy dir too", strings.Join(path, "."))
		}
	}
	return nil
}

// loadSources reads the embedded bundle, replaces or extends it with policyDir's Rego and data files
// (loadPolicyDir) and deep-merges configFile over the default config. Both paths may be empty.
func loadSources(policyDir, configFile string) (*sources, error) {
	byBase := map[string]source{}
	var replaced []string
	err := fs.WalkDir(embedded, embeddedDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".rego") {
			return err
		}
		text, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		byBase[e.Name()] = source{base: e.Name(), name: embeddedNamePrefix + p, text: text}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded bundle: %w", err)
	}

	var custom map[string]any
	if policyDir != "" {
		if custom, err = loadPolicyDir(policyDir, byBase, &replaced); err != nil {
			return nil, err
		}
	}

	defaults, err := embedded.ReadFile(defaultConfigPath)
	if err != nil {
		return nil, fmt.Errorf("reading embedded config: %w", err)
	}
	config, err := parseConfig(embeddedNamePrefix+defaultConfigPath, defaults)
	if err != nil {
		return nil, err
	}
	if configFile != "" {
		raw, err := os.ReadFile(configFile)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		override, err := parseConfig(configFile, raw)
		if err != nil {
			return nil, err
		}
		if err := mergeConfig(config, override, nil); err != nil {
			return nil, fmt.Errorf("config %s: %w", configFile, err)
		}
	}

	s := &sources{config: config, custom: custom, replaced: replaced}
	for _, f := range byBase {
		s.files = append(s.files, f)
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i].base < s.files[j].base })
	s.hash, err = s.contentHash()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseConfig reads a YAML or JSON object (JSON is YAML); errors carry the file name and the parser's line.
func parseConfig(name string, raw []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	var v any
	// util.UnmarshalJSON keeps numbers as json.Number, which OPA stores without float rounding.
	if err := util.UnmarshalJSON(j, &v); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	switch m := v.(type) {
	case nil:
		return map[string]any{}, nil // an empty file changes nothing
	case map[string]any:
		return m, nil
	default:
		return nil, fmt.Errorf("config %s: want an object at the top level, got %s", name, kindOf(v))
	}
}

// replacedConfigMaps are free-form maps (label selectors, resources) that a config file replaces as a whole:
// merging them would add a selector the cluster may not have. presets is open too, but merges, so that a new
// preset keeps eks and karpenter. Every other object only takes the keys the defaults have, so a typo is an
// error instead of a silent no-op.
var replacedConfigMaps = []string{
	"capacity", "nvme.nodeSelector", "nvme.initResources", "fargate.labels", "fargate.nodeSelector",
	"isolation.nodeSelector", "driverZone.zones", "autoscaler.driverAnnotations",
}

const openConfigMap = "presets"

// customConfigKey is the config section of a policy dir's own policies: any keys at any depth below it are
// accepted (merged key by key), read as cfg.custom.<name>.
const customConfigKey = "custom"

// mergeConfig deep-merges override into base: objects key by key (except replacedConfigMaps), lists and
// scalars replaced. A value must have the kind of the default it replaces.
func mergeConfig(base, override map[string]any, at []string) error {
	for key, ov := range override {
		path := append(slices.Clone(at), key)
		where := strings.Join(path, ".")
		bv, known := base[key]
		if !known {
			if strings.Join(at, ".") != openConfigMap && (len(at) == 0 || at[0] != customConfigKey) {
				return fmt.Errorf("unknown key %s (known: %s)", where, strings.Join(sortedKeys(base), ", "))
			}
			base[key] = ov
			continue
		}
		if kindOf(bv) != kindOf(ov) {
			return fmt.Errorf("%s: want %s, got %s", where, kindOf(bv), kindOf(ov))
		}
		if bm, ok := bv.(map[string]any); ok && !slices.Contains(replacedConfigMaps, where) {
			if err := mergeConfig(bm, ov.(map[string]any), path); err != nil {
				return err
			}
			continue
		}
		base[key] = ov
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// contentHash identifies what the engine evaluates: every Rego file's base name and text, and the data (the
// merged config, the policy dir's data) in canonical JSON (encoding/json sorts object keys).
func (s *sources) contentHash() (string, error) {
	h := sha256.New()
	for _, f := range s.files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.base, len(f.text))
		h.Write(f.text)
	}
	cfg, err := json.Marshal(s.data())
	if err != nil {
		return "", fmt.Errorf("hashing config: %w", err)
	}
	h.Write(cfg)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// parse parses the Rego files (in v1 syntax), leaving out tests unless withTests. Errors carry file:line.
func (s *sources) parse(withTests bool) (map[string]*ast.Module, error) {
	modules := map[string]*ast.Module{}
	var errs ast.Errors
	for _, f := range s.files {
		if f.isTest() && !withTests {
			continue
		}
		// METADATA is read: its schemas make the compiler type-check input and config paths.
		m, err := ast.ParseModuleWithOpts(f.name, string(f.text), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			var astErrs ast.Errors
			if errors.As(err, &astErrs) {
				errs = append(errs, astErrs...)
				continue
			}
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		modules[f.name] = m
	}
	if len(errs) > 0 {
		return nil, &CompileError{Errors: errs}
	}
	return modules, nil
}

// newCompiler is the compiler both Decide and RunTests use: Rego v1, type-checked against the schemas the
// METADATA annotations name (schema.input, schema.config), so a typo in an input or config path is a compile
// error with file:line.
func newCompiler() (*ast.Compiler, error) {
	schemas, err := loadSchemas()
	if err != nil {
		return nil, err
	}
	return ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithSchemas(schemas).WithUseTypeCheckAnnotations(true), nil
}

// compile compiles parsed modules for evaluation.
func compile(modules map[string]*ast.Module) (*ast.Compiler, error) {
	c, err := newCompiler()
	if err != nil {
		return nil, err
	}
	if c.Compile(modules); c.Failed() {
		return nil, &CompileError{Errors: c.Errors}
	}
	return c, nil
}

// CompileError is a policy that does not parse or compile. Each entry has file, line and message.
type CompileError struct {
	Errors ast.Errors
}

func (e *CompileError) Error() string {
	var b bytes.Buffer
	for i, err := range e.Errors {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// copyConfig returns a deep copy, so callers cannot change the config the engine evaluates with.
func copyConfig(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyConfig(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copyConfig(e)
		}
		return l
	default:
		return v
	}
}
