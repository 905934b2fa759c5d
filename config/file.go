package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	commoncfg "github.com/prometheus/common/config"
	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/internal/yamlnode"
	"github.com/slogate/slogate/slo"
)

// fileValues is what the config file says, key by key. The file is read
// here rather than by viper because viper neither rejects unknown keys nor
// knows where a value was written.
type fileValues struct {
	path    string
	values  map[string]any        // dotted key → text or []string, as viper gets them
	nodes   map[string]*yaml.Node // dotted key → its value node, for positions
	headers map[string]string
	http    *commoncfg.HTTPClientConfig
	failed  map[string]bool // keys the file sets wrongly; already reported
	// unreadable: the file could not be read or is not a YAML mapping, so
	// what it means to set is unknown and checking the rest is noise.
	unreadable bool
}

// viperMap nests the values as viper expects a decoded config file.
func (f *fileValues) viperMap() map[string]any {
	root := map[string]any{}
	for key, v := range f.values {
		m := root
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	return root
}

// section is a node of the known-key tree built from the fields table.
type section struct {
	children map[string]*section
	field    *field // set on leaves
}

var schema = func() *section {
	root := &section{children: map[string]*section{}}
	for i := range fields {
		s := root
		for _, p := range strings.Split(fields[i].key, ".") {
			if s.children[p] == nil {
				s.children[p] = &section{children: map[string]*section{}}
			}
			s = s.children[p]
		}
		s.field = &fields[i]
	}
	return root
}()

// readFile parses the YAML file strictly. Problems come back as errors
// starting with file:line:col, all of them, not just the first.
func readFile(path string) (*fileValues, []error) {
	fv := &fileValues{
		path:   path,
		values: map[string]any{},
		nodes:  map[string]*yaml.Node{},
		failed: map[string]bool{},
	}
	data, err := readLimited(path)
	if err != nil {
		fv.unreadable = true
		return fv, []error{err}
	}
	r := &fileReader{fv: fv, data: data}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fv, nil // an empty file: everything else applies
		}
		fv.unreadable = true
		return fv, []error{r.syntaxError(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.errorf(&extra, "only one YAML document is allowed in the config file")
	} else if !errors.Is(err, io.EOF) {
		r.errs = append(r.errs, r.syntaxError(err))
	}

	top := doc.Content[0]
	switch {
	case yamlnode.IsNull(top):
	case top.Kind != yaml.MappingNode:
		fv.unreadable = true
		r.errorf(top, "expected a mapping of keys, got %s", yamlnode.Describe(top))
	default:
		r.walk(top, "", schema)
	}
	if n := fv.nodes["prometheus.http"]; n != nil {
		r.decodeHTTP(data, top, n)
	}
	return fv, r.errs
}

// MaxFileSize caps the config file. A real one is a few kilobytes; a huge
// one (a generated list gone wrong, the wrong file) would otherwise take
// seconds to minutes to parse before anything is reported.
const MaxFileSize = 1 << 20

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: the config file is larger than %d MiB; slogate's configuration is expected to be small", path, MaxFileSize>>20)
	}
	return data, nil
}

type fileReader struct {
	fv   *fileValues
	data []byte
	errs []error
}

func (r *fileReader) errorf(n *yaml.Node, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s:%d:%d: %s", r.fv.path, n.Line, n.Column, fmt.Sprintf(format, args...)))
}

// keyErrorf reports a bad value of key and keeps Load from validating the
// default that stays in its place.
func (r *fileReader) keyErrorf(key string, n *yaml.Node, format string, args ...any) {
	r.fv.failed[key] = true
	r.errorf(n, "%s: %s", key, fmt.Sprintf(format, args...))
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewrites "yaml: line 3: msg" as "file:3: msg". Bytes that
// yaml.v3 cannot read are reported without a line; they are located here.
func (r *fileReader) syntaxError(err error) error {
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s:%s: %s", r.fv.path, m[1], m[2])
	}
	if line, col, what, ok := yamlnode.BadByte(r.data); ok {
		return fmt.Errorf("%s:%d:%d: %s", r.fv.path, line, col, what)
	}
	return fmt.Errorf("%s: %w", r.fv.path, err)
}

func (r *fileReader) walk(m *yaml.Node, prefix string, sec *section) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			r.errorf(k, "keys must be strings, got %s", yamlnode.Describe(k))
			continue
		}
		name, key := k.Value, join(prefix, k.Value)
		if first, dup := seen[name]; dup {
			r.errorf(k, "duplicate key %q (first set at line %d)", key, first.Line)
			continue
		}
		seen[name] = k
		child := sec.children[name]
		if child == nil {
			r.errorf(k, "unknown key %q%s", key, suggest(prefix, name, sec))
			continue
		}
		if yamlnode.IsNull(v) {
			continue // `key:` with nothing after it leaves the default alone
		}
		if child.field == nil {
			if v.Kind != yaml.MappingNode {
				r.errorf(v, "%s: expected a mapping of keys, got %s", key, yamlnode.Describe(v))
				continue
			}
			r.walk(v, key, child)
			continue
		}
		r.leaf(*child.field, v)
	}
}

func (r *fileReader) leaf(f field, n *yaml.Node) {
	r.fv.nodes[f.key] = n
	switch f.kind {
	case kindStrings:
		switch n.Kind {
		case yaml.ScalarNode:
			r.fv.values[f.key] = []string{n.Value}
		case yaml.SequenceNode:
			items := make([]string, 0, len(n.Content))
			for _, it := range n.Content {
				it = resolve(it)
				if it.Kind != yaml.ScalarNode || yamlnode.IsNull(it) {
					r.keyErrorf(f.key, it, "expected a string, got %s", yamlnode.Describe(it))
					return
				}
				items = append(items, it.Value)
			}
			r.fv.values[f.key] = items
		default:
			r.keyErrorf(f.key, n, "expected a list of strings, got %s", yamlnode.Describe(n))
		}
	case kindHeaders:
		if n.Kind != yaml.MappingNode {
			r.keyErrorf(f.key, n, "expected a mapping of header names to values, got %s", yamlnode.Describe(n))
			return
		}
		h := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				r.keyErrorf(f.key, k, "header %s: expected a name and a single value", yamlnode.Describe(k))
				continue
			}
			if _, dup := h[k.Value]; dup {
				r.keyErrorf(f.key, k, "duplicate header %q", k.Value)
				continue
			}
			h[k.Value] = v.Value
		}
		r.fv.headers = h
	case kindHTTP:
		if n.Kind != yaml.MappingNode {
			r.keyErrorf(f.key, n, "expected a mapping of HTTP client settings, got %s", yamlnode.Describe(n))
			delete(r.fv.nodes, f.key)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			r.keyErrorf(f.key, n, "expected a single value, got %s", yamlnode.Describe(n))
			return
		}
		r.fv.values[f.key] = n.Value
	}
}

var (
	v2LineRe     = regexp.MustCompile(`^line (\d+): (.*)$`)
	v2UnknownRe  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	httpSettings = yamlFieldNames(reflect.TypeOf(commoncfg.HTTPClientConfig{}))
)

// decodeHTTP reads prometheus.http exactly as Prometheus reads its
// http client configs: prometheus/common's UnmarshalYAML (defaults and
// validation included) under yaml.v2 in strict mode. The whole file is
// decoded, not the subtree, so that yaml.v2 reports the file's own line
// numbers; the rest of the file lands in catch-all maps and was checked by
// walk already, so only messages about the subtree are kept.
func (r *fileReader) decodeHTTP(data []byte, top, n *yaml.Node) {
	var wrapper struct {
		Prometheus struct {
			HTTP commoncfg.HTTPClientConfig `yaml:"http"`
			Rest map[string]any             `yaml:",inline"`
		} `yaml:"prometheus"`
		Rest map[string]any `yaml:",inline"`
	}
	err := yamlv2.UnmarshalStrict(data, &wrapper)
	var te *yamlv2.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		first, last := n.Line, lastLine(n)
		var kept bool
		for _, msg := range te.Errors {
			m := v2LineRe.FindStringSubmatch(msg)
			if m == nil {
				r.keyErrorf("prometheus.http", n, "%s", msg)
				kept = true
				continue
			}
			line, _ := strconv.Atoi(m[1])
			if line < first || line > last {
				continue
			}
			kept = true
			at := nodeOnLine(n, line)
			if u := v2UnknownRe.FindStringSubmatch(m[2]); u != nil {
				r.keyErrorf("prometheus.http", at, "unknown key %q", u[1])
			} else {
				r.keyErrorf("prometheus.http", at, "%s", m[2])
			}
		}
		if kept {
			return
		}
	case strings.Contains(err.Error(), "excessive aliasing"):
		// yaml.v2 expanded the aliases of the whole file, wherever they
		// are ("billion laughs"): blaming prometheus.http would mislead.
		r.fv.failed["prometheus.http"] = true
		r.errorf(cmpOr(firstAlias(top), top), "anchors and aliases expand to too much data (%s)", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	default:
		// Validation by UnmarshalYAML (e.g. two kinds of authentication).
		r.keyErrorf("prometheus.http", n, "%s", err)
		return
	}
	r.fv.http = &wrapper.Prometheus.HTTP
}

// firstAlias returns the first alias (*name) of the subtree, or nil.
func firstAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := firstAlias(c); a != nil {
			return a
		}
	}
	return nil
}

func cmpOr(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

// lastLine is the last line on which a node of the subtree starts.
func lastLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		last = max(last, lastLine(c))
	}
	return last
}

// nodeOnLine finds the first node of the subtree starting on line, for its
// column; yaml.v2 only reports lines.
func nodeOnLine(n *yaml.Node, line int) *yaml.Node {
	var find func(n *yaml.Node) *yaml.Node
	find = func(n *yaml.Node) *yaml.Node {
		if n.Line == line {
			return n
		}
		for _, c := range n.Content {
			if found := find(c); found != nil {
				return found
			}
		}
		return nil
	}
	if found := find(n); found != nil {
		return found
	}
	return &yaml.Node{Line: line, Column: 1}
}

// suggest explains an unknown key: a likely typo of a sibling, a key that
// belongs in another section, or a dotted key written flat.
func suggest(prefix, name string, sec *section) string {
	if strings.Contains(name, ".") {
		if _, ok := fieldByKey(join(prefix, name)); ok {
			parts := strings.Split(name, ".")
			return fmt.Sprintf(" (keys nest in the file: write %q, then %q indented under it)", parts[0]+":", strings.Join(parts[1:], ".")+":")
		}
	}
	if prefix == "prometheus" && slices.Contains(httpSettings, name) {
		return fmt.Sprintf(" (HTTP client settings go under prometheus.http: did you mean %q?)", "prometheus.http."+name)
	}

	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	best, bestDist := "", len(name)/3+1
	for _, sib := range slices.Sorted(maps.Keys(sec.children)) {
		if d := slo.EditDistance(norm(name), norm(sib)); d < bestDist {
			best, bestDist = sib, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", join(prefix, best))
	}

	// The right name in the wrong place: a key or a section elsewhere.
	var elsewhere []string
	for _, f := range fields {
		parts := strings.Split(f.key, ".")
		if i := slices.Index(parts, norm(name)); i >= 0 {
			if q := strconv.Quote(strings.Join(parts[:i+1], ".")); !slices.Contains(elsewhere, q) {
				elsewhere = append(elsewhere, q)
			}
		}
	}
	if len(elsewhere) > 0 {
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(elsewhere, " or "))
	}
	return ""
}

// yamlFieldNames lists the YAML keys of a struct, inlined structs included.
func yamlFieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			names = append(names, yamlFieldNames(f.Type)...)
			continue
		}
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// resolve follows an alias (*anchor) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
