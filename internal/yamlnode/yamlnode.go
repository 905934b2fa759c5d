// Package yamlnode holds what slogate's two YAML readers with positions —
// the definitions loader (package slo) and the service configuration
// (package config) — both need from a yaml.v3 node tree: the first byte
// YAML does not allow, and the words for "expected X, got Y" messages.
package yamlnode

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// BadByte finds the first character YAML does not allow in a file: bytes
// that are not UTF-8, and control characters other than tab, line feed and
// carriage return. Columns count characters, as yaml.v3's do. UTF-16 files
// (which start with a byte order mark) are not scanned.
func BadByte(data []byte) (line, col int, what string, ok bool) {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return 0, 0, "", false
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("byte 0x%02x is not valid UTF-8", data[i]), true
		case !allowed(r):
			return line, col, fmt.Sprintf("control character %U is not allowed", r), true
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return 0, 0, "", false
}

// allowed is YAML 1.2's set of printable characters (c-printable).
func allowed(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// IsNull reports whether n is an explicit or implicit null (`key:`, `~`).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names what a node is, for "expected X, got Y" messages: a
// mapping, a list, nothing (null), or the quoted scalar, cut at 40
// characters.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		v := n.Value
		if utf8.RuneCountInString(v) > 40 {
			v = string([]rune(v)[:37]) + "..."
		}
		return fmt.Sprintf("%q", v)
	}
	return "nothing"
}
