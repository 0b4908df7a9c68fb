package submit

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// javaProperties renders props as java.util.Properties.store writes them, which is what Spark's
// driver reads back with Utils.loadDefaultSparkProperties: a comment header, a date comment, then
// key=value lines with \, =, :, #, ! escaped and non-ASCII as \uXXXX. Keys are sorted so the output is
// stable (Java's Hashtable order is not meaningful).
func javaProperties(comment string, now time.Time, props map[string]string) string {
	var b strings.Builder
	b.WriteString("#" + comment + "\n")
	// Date.toString(): "Tue Mar 03 12:00:00 UTC 2026".
	b.WriteString("#" + now.UTC().Format("Mon Jan 02 15:04:05 MST 2006") + "\n")
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(escapeProperty(k, true))
		b.WriteByte('=')
		b.WriteString(escapeProperty(props[k], false))
		b.WriteByte('\n')
	}
	return b.String()
}

func escapeProperty(s string, isKey bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == ' ':
			if i == 0 || isKey {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\\' || r == '=' || r == ':' || r == '#' || r == '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			// Java escapes UTF-16 code units.
			for _, u := range utf16Units(r) {
				fmt.Fprintf(&b, `\u%04X`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16Units(r rune) []uint16 {
	if r < 0x10000 {
		return []uint16{uint16(r)}
	}
	r -= 0x10000
	return []uint16{uint16(0xD800 + (r>>10)&0x3FF), uint16(0xDC00 + r&0x3FF)}
}
