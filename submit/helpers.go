package submit

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// prefixed is KubernetesUtils.parsePrefixedKeyValuePairs with validation of each pair.
func (b *builder) prefixed(prefix string, validate func(k, v string) error) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range b.props {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if err := validate(rest, v); err != nil {
				return nil, &ValidationError{Message: k, Err: err}
			}
			out[rest] = v
		}
	}
	return out, nil
}

func (b *builder) intProp(key string, def int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(b.props[key])); err == nil {
		return n
	}
	return def
}

func validateLabel(k, v string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Errorf("label %s value %q: %s", k, v, strings.Join(errs, "; "))
	}
	return nil
}

func validateAnnotationKey(k, _ string) error {
	if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
		return fmt.Errorf("annotation key %q: %s", k, strings.Join(errs, "; "))
	}
	return nil
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validEnvName(s string) bool { return envNamePattern.MatchString(s) }

func javaPropertiesBody(props map[string]string) string {
	var sb strings.Builder
	for _, k := range sortedKeys(props) {
		sb.WriteString(escapeProperty(k, true) + "=" + escapeProperty(props[k], false) + "\n")
	}
	return sb.String()
}

// javaDouble prints a float as Java's Double.toString does for the values used here (0.1, 0.4, 1.0).
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return buf, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinList(list, item string) string {
	if strings.TrimSpace(list) == "" {
		return item
	}
	return list + "," + item
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func ptr[T any](v T) *T { return &v }
