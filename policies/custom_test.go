package policies

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCustomPolicyParameters: a policy in the policy dir reads its own data file (data.sparkplace.custom) and
// its own config section (cfg.custom), which the strict config check accepts; both reload.
func TestCustomPolicyParameters(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/custom", dir)
	config := filepath.Join(t.TempDir(), "config.yaml")
	copyFile(t, "testdata/custom-config.yaml", config)
	e := newEngine(t, Options{PolicyDir: dir, ConfigFile: config})
	ctx := context.Background()
	labels := func() map[string]string {
		t.Helper()
		in := makeInput("driver").obj()
		in.Namespace.Name = "etl"
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return d.Labels
	}
	want := map[string]string{"example.com/team": "data-platform", "example.com/cost-center": "cc-42"}
	if diff := cmp.Diff(want, labels()); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	before := e.Hash()
	write(t, filepath.Join(dir, "sparkplace", "custom", "data.yaml"), "teams: {byNamespace: {etl: ingest}}\n")
	write(t, config, "custom: {teams: {costCenter: cc-7}}\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"example.com/team": "ingest", "example.com/cost-center": "cc-7"}
	if diff := cmp.Diff(want, labels()); diff != "" {
		t.Errorf("labels after changing the data file and the config (-want +got):\n%s", diff)
	}
	if e.Hash() == before {
		t.Error("the bundle hash did not change with the policy dir's data")
	}
}

func TestPolicyDirDataErrors(t *testing.T) {
	cases := map[string]struct {
		dir     string
		wantErr string
	}{
		"data outside data.sparkplace.custom": {
			dir:     "testdata/baddata",
			wantErr: "data file " + filepath.Join("testdata", "baddata", "elsewhere", "data.yaml") + ": it sets data.elsewhere; its content must lie under data.sparkplace.custom",
		},
		"data over the config": {
			dir:     "testdata/configdata",
			wantErr: "it sets data.sparkplace.config;",
		},
		"two data files setting one key": {
			dir:     "testdata/conflictdata",
			wantErr: "data.sparkplace.custom.a is set by another data file of the policy dir too",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), Options{PolicyDir: tc.dir})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestPolicyDirAsConfigMapVolume: a ConfigMap volume is flat and holds each file twice, as name -> ..data/name
// and in a timestamped ..<date> directory; only the visible names are read, and the data goes in a top-level
// data.yaml nested under sparkplace.custom.
func TestPolicyDirAsConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	stamp := filepath.Join(dir, "..2026_11_30_05_00_00.000000000")
	copyFile(t, "testdata/custom/team.rego", filepath.Join(stamp, "team.rego"))
	copyFile(t, "testdata/custom/team_test.rego", filepath.Join(stamp, "team_test.rego"))
	write(t, filepath.Join(stamp, "data.yaml"), "sparkplace:\n  custom:\n    teams: {byNamespace: {etl: data-platform}}\n")
	if err := os.Symlink(filepath.Base(stamp), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team.rego", "team_test.rego", "data.yaml"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	src, err := loadSources(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var fromDir []string
	for _, f := range src.files {
		if !f.embedded() {
			fromDir = append(fromDir, f.name)
		}
	}
	if want := []string{filepath.Join(dir, "team.rego"), filepath.Join(dir, "team_test.rego")}; !cmp.Equal(want, fromDir) {
		t.Errorf("policy dir files %v, want %v", fromDir, want)
	}
	want := map[string]any{"teams": map[string]any{"byNamespace": map[string]any{"etl": "data-platform"}}}
	if diff := cmp.Diff(want, src.custom); diff != "" {
		t.Errorf("data.sparkplace.custom (-want +got):\n%s", diff)
	}
}

func write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, to, string(raw))
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err == nil {
			copyFile(t, p, filepath.Join(to, rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
