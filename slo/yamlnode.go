package slo

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// maxAliases bounds alias dereferences per file. yaml.v3 keeps aliases as
// pointers in the node tree (no expansion at parse time), but a decoder that
// follows them can still be made to do exponential work ("billion laughs");
// no honest definition file needs anywhere near this many.
const maxAliases = 10000

// maxProblemsPerFile bounds the diagnostics of one file: past it a file is
// garbage, not a definition with typos, and listing more helps nobody.
const maxProblemsPerFile = 1000

// decoder turns the YAML nodes of one file into the model, reporting every
// problem it meets instead of stopping at the first.
type decoder struct {
	file      string
	diags     *Diagnostics
	aliases   int
	bombed    bool // maxAliases exceeded: reported once, aliases then read as null
	problems  int
	dropped   int
	firstDrop Pos
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	return nodePos(d.file, n)
}

func nodePos(file string, n *yaml.Node) Pos {
	// yaml.v3 leaves Line 0 on a few synthetic nodes; diagnostics promise a
	// real line.
	return Pos{File: file, Line: max(n.Line, 1), Col: max(n.Column, 1)}
}

func (d *decoder) report(l Level, n *yaml.Node, format string, args ...any) {
	if d.problems++; d.problems > maxProblemsPerFile {
		if d.dropped++; d.dropped == 1 {
			d.firstDrop = d.pos(n)
		}
		return
	}
	*d.diags = append(*d.diags, Diagnostic{Pos: d.pos(n), Severity: l, Message: fmt.Sprintf(format, args...)})
}

// flush reports how many problems were left out.
func (d *decoder) flush() {
	if d.dropped > 0 {
		*d.diags = append(*d.diags, Diagnostic{Pos: d.firstDrop, Severity: LevelError,
			Message: fmt.Sprintf("%d more problems in this file are not shown", d.dropped)})
		d.dropped = 0
	}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.report(LevelError, n, format, args...)
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.report(LevelWarning, n, format, args...)
}

// resolve follows aliases; it returns nil for an explicit null, which every
// field treats like an absent one (as Kubernetes does).
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if d.aliases++; d.aliases > maxAliases {
			if !d.bombed {
				d.bombed = true
				d.errorf(n, "more than %d alias references in one file; refusing to expand them", maxAliases)
			}
			return nil
		}
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	return n
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fields is a YAML mapping whose keys were checked against the known ones.
// Its getters report type errors at the value's node and return zero values,
// so decoding goes on and finds the next problem too.
type fields struct {
	d       *decoder
	path    string
	mapping *yaml.Node // nil when absent
	bad     bool       // not a mapping: required-field errors would be noise
	vals    map[string]*yaml.Node
	keys    map[string]*yaml.Node
}

// fields checks that n is a mapping of known keys. n may be nil (absent).
func (d *decoder) fields(n *yaml.Node, path string, known ...string) *fields {
	f := &fields{d: d, path: path, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	n = d.resolve(n)
	if n == nil {
		return f
	}
	f.mapping = n
	if n.Kind != yaml.MappingNode {
		f.bad = true
		d.errorf(n, "%s: expected a mapping, got %s", pathOrDocument(path), yamlnode.Describe(n))
		return f
	}
	f.collect(n, known, 0)
	return f
}

func pathOrDocument(path string) string {
	if path == "" {
		return "document"
	}
	return path
}

// collect reads the pairs of a mapping, following merge keys (<<) so that
// anchors can share common parts; explicit keys win over merged ones.
func (f *fields) collect(n *yaml.Node, known []string, depth int) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			f.d.errorf(k, "%s: keys must be strings, got %s", pathOrDocument(f.path), yamlnode.Describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if prev, dup := f.keys[k.Value]; dup && depth == 0 {
			f.d.errorf(k, "duplicate field %q in %s (first at line %d)", k.Value, pathOrDocument(f.path), prev.Line)
			continue
		} else if dup {
			continue
		}
		if !slices.Contains(known, k.Value) {
			f.d.errorf(k, "unknown field %q%s%s", k.Value, inPath(f.path), didYouMean(k.Value, known))
			continue
		}
		f.keys[k.Value] = k
		f.vals[k.Value] = v
	}
	for _, m := range merges {
		if depth > 8 {
			f.d.errorf(m, "%s: merge keys nested too deeply", pathOrDocument(f.path))
			return
		}
		m = f.d.resolve(m)
		switch {
		case m == nil:
		case m.Kind == yaml.MappingNode:
			f.collect(m, known, depth+1)
		case m.Kind == yaml.SequenceNode:
			for _, e := range m.Content {
				if e = f.d.resolve(e); e != nil && e.Kind == yaml.MappingNode {
					f.collect(e, known, depth+1)
				}
			}
		default:
			f.d.errorf(m, "%s: a merge key (<<) needs a mapping, got %s", pathOrDocument(f.path), yamlnode.Describe(m))
		}
	}
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// has reports whether the field is present and not null.
func (f *fields) has(name string) bool { return f.node(name) != nil }

// node returns the resolved value node of a field, nil when absent or null.
func (f *fields) node(name string) *yaml.Node {
	v, ok := f.vals[name]
	if !ok {
		return nil
	}
	return f.d.resolve(v)
}

func (f *fields) sub(name string, known ...string) *fields {
	return f.d.fields(f.node(name), joinPath(f.path, name), known...)
}

// str returns a scalar field as text. Any scalar is accepted (a service
// called 123 is still a name); lists and mappings are not.
func (f *fields) str(name string) (string, *yaml.Node) {
	n := f.node(name)
	if n == nil {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		f.d.errorf(n, "%s: expected a string, got %s", joinPath(f.path, name), yamlnode.Describe(n))
		return "", nil
	}
	return n.Value, n
}

// num returns a numeric field; ok is false when absent or invalid.
func (f *fields) num(name string) (v float64, n *yaml.Node, ok bool) {
	n = f.node(name)
	if n == nil {
		return 0, nil, false
	}
	v, ok = f.d.number(n, joinPath(f.path, name))
	return v, n, ok
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
		d.errorf(n, "%s: expected a number, got %s", path, yamlnode.Describe(n))
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		d.errorf(n, "%s: expected a number, got %s", path, yamlnode.Describe(n))
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, "%s: expected a finite number, got %s", path, yamlnode.Describe(n))
		return 0, false
	}
	return v, true
}

func (f *fields) boolean(name string, def bool) bool {
	n := f.node(name)
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		f.d.errorf(n, "%s: expected true or false, got %s", joinPath(f.path, name), yamlnode.Describe(n))
		return def
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		f.d.errorf(n, "%s: expected true or false, got %s", joinPath(f.path, name), yamlnode.Describe(n))
		return def
	}
	return b
}

// duration reads a Prometheus duration ("30d", "1h30m"). ok is false when
// absent or invalid.
func (f *fields) duration(name string) (time.Duration, *yaml.Node, bool) {
	n := f.node(name)
	if n == nil {
		return 0, nil, false
	}
	if n.Kind != yaml.ScalarNode {
		f.d.errorf(n, "%s: expected a duration like 30d or 5m, got %s", joinPath(f.path, name), yamlnode.Describe(n))
		return 0, n, false
	}
	d, err := model.ParseDuration(n.Value)
	if err != nil {
		f.d.errorf(n, "%s: invalid duration %q: use a number and a unit (ms, s, m, h, d, w, y) like 30d or 5m", joinPath(f.path, name), n.Value)
		return 0, n, false
	}
	return time.Duration(d), n, true
}

// ratio reads a share written either as a percentage string ("25%") or as
// a ratio between 0 and 1 (0.25), and returns the ratio. Numbers above 1
// are refused rather than guessed: 25 could mean 25 % or be a typo.
func (f *fields) ratio(name string) (float64, *yaml.Node, bool) {
	n := f.node(name)
	if n == nil {
		return 0, nil, false
	}
	path := joinPath(f.path, name)
	if n.Kind != yaml.ScalarNode {
		f.d.errorf(n, "%s: expected a percentage like \"25%%\" or a ratio like 0.25, got %s", path, yamlnode.Describe(n))
		return 0, n, false
	}
	if text, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "%"); ok {
		v, err := parseBound(strings.TrimSpace(text))
		if err != nil || strings.HasSuffix(strings.TrimSpace(text), "%") {
			f.d.errorf(n, "%s: invalid percentage %q", path, n.Value)
			return 0, n, false
		}
		if v < 0 || v > 100 {
			f.d.errorf(n, "%s: %s is not between 0%% and 100%%", path, n.Value)
			return 0, n, false
		}
		return v / 100, n, true
	}
	v, err := parseBound(strings.TrimSpace(n.Value))
	if err != nil {
		f.d.errorf(n, "%s: expected a percentage like \"25%%\" or a ratio like 0.25, got %s", path, yamlnode.Describe(n))
		return 0, n, false
	}
	if v < 0 || v > 1 {
		f.d.errorf(n, "%s: %s is not a ratio between 0 and 1; write \"%s%%\" for a percentage", path, n.Value, n.Value)
		return 0, n, false
	}
	return v, n, true
}

// list returns the items of a list field (aliases resolved, nulls kept as
// nil so that indexes in messages match the file).
func (f *fields) list(name string) []*yaml.Node {
	n := f.node(name)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		f.d.errorf(n, "%s: expected a list, got %s", joinPath(f.path, name), yamlnode.Describe(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, e := range n.Content {
		out[i] = f.d.resolve(e)
	}
	return out
}

// strList reads a list of strings; a single string is not silently taken
// for a one-item list, since YAML users do mean lists here.
func (f *fields) strList(name string) ([]string, []*yaml.Node) {
	var vals []string
	var nodes []*yaml.Node
	for i, e := range f.list(name) {
		if e == nil || e.Kind != yaml.ScalarNode || e.Value == "" {
			got := "null"
			if e != nil {
				got = yamlnode.Describe(e)
			}
			f.d.errorf(cmpNode(e, f.node(name)), "%s[%d]: expected a name, got %s", joinPath(f.path, name), i, got)
			continue
		}
		vals = append(vals, e.Value)
		nodes = append(nodes, e)
	}
	return vals, nodes
}

func cmpNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

// labels reads a map of Prometheus label names to values. Label names are
// checked (they become label names on metrics and alerts); values may be
// any scalar. reserved names the labels slogate sets itself.
func (f *fields) labels(name string, reserved ...string) map[string]string {
	n := f.node(name)
	if n == nil {
		return nil
	}
	path := joinPath(f.path, name)
	if n.Kind != yaml.MappingNode {
		f.d.errorf(n, "%s: expected a mapping of label names to values, got %s", path, yamlnode.Describe(n))
		return nil
	}
	out := map[string]string{}
	pairs := f.d.mergedPairs(n, path)
	for i := 0; i+1 < len(pairs); i += 2 {
		k, v := pairs[i], f.d.resolve(pairs[i+1])
		if k.Kind != yaml.ScalarNode {
			f.d.errorf(k, "%s: keys must be strings, got %s", path, yamlnode.Describe(k))
			continue
		}
		if _, dup := out[k.Value]; dup {
			f.d.errorf(k, "%s: duplicate label %q", path, k.Value)
			continue
		}
		if msg := checkLabelName(k.Value, reserved); msg != "" {
			f.d.errorf(k, "%s: %s", path, msg)
			continue
		}
		switch {
		case v == nil:
			out[k.Value] = ""
		case v.Kind == yaml.ScalarNode:
			out[k.Value] = v.Value
		default:
			f.d.errorf(v, "%s.%s: expected a string, got %s", path, k.Value, yamlnode.Describe(v))
		}
	}
	return out
}

// mergedPairs returns the key/value pairs of mapping n with its merge keys
// (<<: *common, or a list of them) expanded, as in labels: {<<: *common,
// tier: "1"}: the mapping's own keys first, then the merged ones it does
// not set itself (explicit keys win, the first merged mapping wins over the
// later ones).
func (d *decoder) mergedPairs(n *yaml.Node, path string) []*yaml.Node {
	var own, merged []*yaml.Node
	var expand func(m *yaml.Node, depth int)
	expand = func(m *yaml.Node, depth int) {
		m = d.resolve(m)
		switch {
		case m == nil:
		case depth > 8:
			d.errorf(m, "%s: merge keys nested too deeply", path)
		case m.Kind == yaml.SequenceNode:
			for _, e := range m.Content {
				expand(e, depth+1)
			}
		case m.Kind != yaml.MappingNode:
			d.errorf(m, "%s: a merge key (<<) needs a mapping, got %s", path, yamlnode.Describe(m))
		default:
			for i := 0; i+1 < len(m.Content); i += 2 {
				if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
					expand(m.Content[i+1], depth+1)
				} else {
					merged = append(merged, k, m.Content[i+1])
				}
			}
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			expand(n.Content[i+1], 0)
			continue
		}
		own = append(own, n.Content[i], n.Content[i+1])
		seen[n.Content[i].Value] = true
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i]; k.Kind != yaml.ScalarNode || !seen[k.Value] {
			own = append(own, k, merged[i+1])
			seen[k.Value] = true
		}
	}
	return own
}

// require reports each missing field at at: the document's start for
// fields of metadata and spec (what then names the document, since the
// position alone does not), else the mapping or list item that lacks it.
func (f *fields) require(at *yaml.Node, what string, names ...string) {
	if f.bad || f.mapping == nil {
		return // the mapping itself is missing or wrong: reported once, above
	}
	for _, name := range names {
		if f.has(name) {
			continue
		}
		if what == "" {
			f.d.errorf(at, "%s is required", joinPath(f.path, name))
		} else {
			f.d.errorf(at, "%s: %s is required", what, joinPath(f.path, name))
		}
	}
}
