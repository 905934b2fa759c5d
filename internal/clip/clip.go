// Package clip shortens text that a request brings (a name, a run id, a
// query parameter) before an error answer quotes it: the answer should say
// what was wrong, not hand back whatever was sent, and a 10,000-character
// name should not make a 10,000-character error.
package clip

import (
	"fmt"
	"unicode/utf8"
)

// NameBytes bounds a name or id quoted in an error answer. Every name that
// can exist fits whole: definition names are at most 253 bytes, run ids at
// most 128.
const NameBytes = 256

// Name is String(s, NameBytes).
func Name(s string) string { return String(s, NameBytes) }

// String returns s if it is at most max bytes long, else its first max
// bytes or fewer, cut before a character rather than inside one, followed
// by "…" and how much was cut. The cut never splits a character, so valid
// UTF-8 stays valid.
func String(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	// Back to the start of a character; a run of stray continuation bytes
	// (invalid UTF-8) is cut through after utf8.UTFMax steps.
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return fmt.Sprintf("%s… [%d more bytes cut]", s[:cut], len(s)-cut)
}
