package submit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// splitShellWords splits sparkSubmitParameters the way a POSIX shell splits a command line, without any
// expansion: blanks separate words, '…' is literal, "…" honours \" \\ \$ \` and line continuations, and a
// backslash outside quotes escapes the next character. Users copy these strings from shell scripts, so
// `--conf "spark.driver.extraJavaOptions=-Dx=1 -Dy=2"` must stay one word.
func splitShellWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		runes   = []rune(s)
		closing rune
	)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case closing == '\'':
			if r == '\'' {
				closing = 0
				continue
			}
			cur.WriteRune(r)
		case closing == '"':
			switch {
			case r == '"':
				closing = 0
			case r == '\\' && i+1 < len(runes) && strings.ContainsRune("\"\\$`\n", runes[i+1]):
				i++
				if runes[i] != '\n' {
					cur.WriteRune(runes[i])
				}
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			closing, inWord = r, true
		case r == '\\':
			if i+1 == len(runes) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			if runes[i] != '\n' {
				cur.WriteRune(runes[i])
				inWord = true
			}
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if closing != 0 {
		return nil, fmt.Errorf("unterminated %c quote", closing)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// submitOptions is what spark-submit's command line says, before it is merged with spark-defaults.
type submitOptions struct {
	mainClass string
	conf      []keyValue // --conf, in order: a later one wins, as in spark-submit
	// options maps Spark property → value for the dedicated options (--driver-memory …); they override
	// both --conf and spark-defaults, because SparkSubmitArguments reads them first.
	options map[string]string
}

type keyValue struct{ key, value string }

// optionProperties is SparkSubmit's OptionAssigner table, restricted to what applies to Kubernetes
// cluster mode.
var optionProperties = map[string]string{
	"--name":                "spark.app.name",
	"--jars":                "spark.jars",
	"--files":               "spark.files",
	"--py-files":            "spark.submit.pyFiles",
	"--archives":            "spark.archives",
	"--packages":            "spark.jars.packages",
	"--exclude-packages":    "spark.jars.excludes",
	"--repositories":        "spark.jars.repositories",
	"--driver-memory":       "spark.driver.memory",
	"--driver-cores":        "spark.driver.cores",
	"--driver-java-options": "spark.driver.extraJavaOptions",
	"--driver-library-path": "spark.driver.extraLibraryPath",
	"--driver-class-path":   "spark.driver.extraClassPath",
	"--executor-memory":     "spark.executor.memory",
	"--executor-cores":      "spark.executor.cores",
	"--num-executors":       "spark.executor.instances",
}

// optionsTheSubmitterOwns are spark-submit options whose answer is fixed by the job run itself.
var optionsTheSubmitterOwns = map[string]string{
	"--master":          "the master is the Kubernetes API server of the virtual cluster",
	"--deploy-mode":     "job runs always use cluster mode",
	"--properties-file": "use the spark-defaults classification instead",
	"--proxy-user":      "the driver runs as the execution role's service account",
	"--kill":            "use `sparkplace jobs cancel`",
	"--status":          "use `sparkplace jobs describe`",
}

// parseSubmitParameters maps sparkSubmitParameters to Spark properties as SparkSubmitArguments does.
func parseSubmitParameters(params string) (*submitOptions, error) {
	words, err := splitShellWords(params)
	if err != nil {
		return nil, invalidf("sparkSubmitParameters: %v", err)
	}
	opts := &submitOptions{options: map[string]string{}}
	for i := 0; i < len(words); i++ {
		word := words[i]
		name, value, hasValue := strings.Cut(word, "=")
		if !strings.HasPrefix(word, "-") {
			return nil, invalidf("sparkSubmitParameters: unexpected argument %q (application arguments go in entryPointArguments)", word)
		}
		if name == "-c" {
			name = "--conf"
		}
		switch name {
		case "--verbose", "-v", "--supervise":
			if hasValue {
				return nil, invalidf("sparkSubmitParameters: %s takes no value", name)
			}
			continue
		}
		if why, ok := optionsTheSubmitterOwns[name]; ok {
			return nil, invalidf("sparkSubmitParameters: %s is not accepted: %s", name, why)
		}
		property, known := optionProperties[name]
		if !known && name != "--conf" && name != "--class" {
			return nil, invalidf("sparkSubmitParameters: unknown spark-submit option %q", name)
		}
		if !hasValue {
			if i+1 == len(words) {
				return nil, invalidf("sparkSubmitParameters: %s needs a value", name)
			}
			i++
			value = words[i]
		}
		switch name {
		case "--conf":
			k, v, ok := strings.Cut(value, "=")
			if !ok || k == "" {
				return nil, invalidf("sparkSubmitParameters: --conf %q is not key=value (spark-submit: Spark config without '=')", value)
			}
			opts.conf = append(opts.conf, keyValue{strings.TrimSpace(k), strings.TrimSpace(v)})
		case "--class":
			opts.mainClass = value
		default:
			opts.options[property] = value
		}
	}
	return opts, nil
}

var (
	sizePattern       = regexp.MustCompile(`^([0-9]+)([a-z]+)?$`)
	fractionalPattern = regexp.MustCompile(`^([0-9]+\.[0-9]+)([a-z]+)?$`)
	sizeUnits         = map[string]int64{
		"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50,
	}
)

// parseMiB reads a Spark memory size such as "4G", "512m" or "2048" (MiB when there is no unit), as
// JavaUtils.byteStringAs(…, MiB) does, rounding down to whole MiB.
func parseMiB(key, value string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(value))
	if fractionalPattern.MatchString(s) {
		return 0, invalidf("%s=%q: fractional values are not supported; use a smaller unit, e.g. 1536m", key, value)
	}
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, invalidf("%s=%q is not a memory size: use a whole number with b, k, m, g, t or p (e.g. 512m, 4g)", key, value)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, invalidf("%s=%q: %v", key, value, err)
	}
	if m[2] == "" {
		return n, nil
	}
	unit, ok := sizeUnits[m[2]]
	if !ok {
		return 0, invalidf("%s=%q: unknown size unit %q (use b, k, m, g, t or p)", key, value, m[2])
	}
	const mib = 1 << 20
	if n > (1<<62)/unit {
		return 0, invalidf("%s=%q is too large", key, value)
	}
	return n * unit / mib, nil
}
