package policies

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/placement"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGuardrailsFile loads guardrails from their own file, over the defaults, and refuses guardrails that
// would not hold, naming the field.
func TestGuardrailsFile(t *testing.T) {
	cases := map[string]struct {
		file    string
		want    placement.Guardrails
		wantErr string
	}{
		"a key replaces the default, the others stay": {
			file: "allowedHostPathPrefixes: [/mnt/nvme0/]\n",
			want: placement.Guardrails{
				AllowedHostPathPrefixes: []string{"/mnt/nvme0/"},
				AllowedCapabilities:     []corev1.Capability{"CHOWN"},
				AllowedLabelPrefixes:    []string{"sparkplace.io/"},
			},
		},
		"an empty file changes nothing": {
			file: "",
			want: placement.Guardrails{
				AllowedHostPathPrefixes: []string{"/pv-disks/"},
				AllowedCapabilities:     []corev1.Capability{"CHOWN"},
				AllowedLabelPrefixes:    []string{"sparkplace.io/"},
			},
		},
		"JSON works too": {
			file: `{"allowedLabelPrefixes": ["sparkplace.io/", "team.example.com/"]}`,
			want: placement.Guardrails{
				AllowedHostPathPrefixes: []string{"/pv-disks/"},
				AllowedCapabilities:     []corev1.Capability{"CHOWN"},
				AllowedLabelPrefixes:    []string{"sparkplace.io/", "team.example.com/"},
			},
		},
		"hostPath prefix of / (every host directory)": {
			file: "allowedHostPathPrefixes: [/]\n", wantErr: `guardrail allowedHostPathPrefixes[0]: "/" would allow every host directory`,
		},
		"hostPath prefix that is a parent of the kubelet's state": {
			file: "allowedHostPathPrefixes: [/var/]\n", wantErr: "allowedHostPathPrefixes[0]: \"/var/\" overlaps the system directory /var/lib/containerd",
		},
		"capability beyond baseline": {
			file: "allowedCapabilities: [CHOWN, SYS_ADMIN]\n", wantErr: "allowedCapabilities[1]: SYS_ADMIN is beyond what Pod Security baseline allows",
		},
		"unknown key (a typo, or a tunable in the wrong file)": {
			file: "allowedHostPathPrefix: [/mnt/]\n", wantErr: `unknown field "allowedHostPathPrefix"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), Options{GuardrailsFile: writeFile(t, "guardrails.yaml", tc.file)})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, e.Current().Guardrails()); diff != "" {
				t.Errorf("guardrails (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfigCannotCarryGuardrails: the tunables' file cannot widen the guardrails (they are not a config key).
func TestConfigCannotCarryGuardrails(t *testing.T) {
	_, err := New(context.Background(), Options{ConfigFile: writeFile(t, "config.yaml", "guardrails:\n  allowedHostPathPrefixes: [/]\n")})
	if err == nil || !strings.Contains(err.Error(), "unknown key guardrails") {
		t.Fatalf("New() error = %v, want an unknown key guardrails", err)
	}
}

// TestGuardrailsReload: a changed guardrails file is a new version (new hash); a broken one keeps the last good.
func TestGuardrailsReload(t *testing.T) {
	ctx := context.Background()
	file := writeFile(t, "guardrails.yaml", "")
	e := newEngine(t, Options{GuardrailsFile: file})
	before := e.Hash()
	if err := os.WriteFile(file, []byte("allowedHostPathPrefixes: [/mnt/nvme0/]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Hash() == before || e.Current().Guardrails().AllowedHostPathPrefixes[0] != "/mnt/nvme0/" {
		t.Fatalf("after reload: hash %s (was %s), guardrails %+v", e.Hash(), before, e.Current().Guardrails())
	}
	good := e.Hash()
	if err := os.WriteFile(file, []byte("allowedHostPathPrefixes: [/]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err == nil || !strings.Contains(err.Error(), "allowedHostPathPrefixes[0]") {
		t.Fatalf("Reload of a broken guardrails file: %v", err)
	}
	if e.Hash() != good {
		t.Errorf("a broken guardrails file replaced the last good version")
	}
}

// TestGuardrailsHashIsTheirMeaning: a guardrails file that says what the defaults say (comments, order and
// spelling aside) gives the same version hash, so webhooks installed with and without it annotate alike.
func TestGuardrailsHashIsTheirMeaning(t *testing.T) {
	same := newEngine(t, Options{GuardrailsFile: writeFile(t, "g.yaml", "# the default prefix\nallowedHostPathPrefixes: [/pv-disks/]\n")})
	other := newEngine(t, Options{GuardrailsFile: writeFile(t, "g.yaml", "allowedHostPathPrefixes: [/mnt/nvme0/]\n")})
	if def := newEngine(t, Options{}).Hash(); same.Hash() != def || other.Hash() == def {
		t.Errorf("hashes: defaults %s, same guardrails %s, other guardrails %s", def, same.Hash(), other.Hash())
	}
}
