package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct {
		name string
		s    string
		max  int
		want string
	}{
		{name: "short", s: "kill-checkout-pod", max: 32, want: "kill-checkout-pod"},
		{name: "exactly max", s: "abcd", max: 4, want: "abcd"},
		{name: "one byte over", s: "abcde", max: 4, want: "abcd… [1 more bytes cut]"},
		{name: "empty", s: "", max: 4, want: ""},
		{name: "before a two-byte character", s: "abcé", max: 4, want: "abc… [2 more bytes cut]"},
		{name: "before a four-byte character", s: "a😀b", max: 3, want: "a… [5 more bytes cut]"},
		{name: "after a whole character", s: "éé", max: 2, want: "é… [2 more bytes cut]"},
		{name: "stray continuation bytes", s: "a" + strings.Repeat("\x80", 10), max: 8, want: "a\x80\x80\x80… [7 more bytes cut]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.s, tt.max); got != tt.want {
				t.Errorf("String(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
			}
		})
	}
}

func TestNameKeepsEveryValidName(t *testing.T) {
	valid := strings.Repeat("a", 253) // slo's longest name
	if got := Name(valid); got != valid {
		t.Errorf("Name cut a valid name: %q", got)
	}
	long := strings.Repeat("ü", 5000)
	got := Name(long)
	if len(got) > NameBytes+len("… [10000 more bytes cut]") || !utf8.ValidString(got) || !strings.HasSuffix(got, " more bytes cut]") {
		t.Errorf("Name of 10,000 bytes: %d bytes, valid UTF-8 %v: %q", len(got), utf8.ValidString(got), got)
	}
}
