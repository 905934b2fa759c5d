package slo

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// kindSLI is OpenSLO's SLI kind: it has a name space of its own, since only
// OpenSLO SLOs refer to it.
const kindSLI = "SLI"

// loader accumulates the definitions and diagnostics of all files; names
// and references are resolved across files once everything is read.
type loader struct {
	opts  LoadOptions
	diags Diagnostics
	set   *Set
	defs  map[string]map[string]definition // kind → name → first definition
	refs  []reference
	// decoders of every file, to report problems left out once references
	// (which may add more) are resolved.
	decoders []*decoder
}

type definition struct {
	pos    Pos // of the name, where a duplicate points
	target any // *SLO, *Hypothesis, *Experiment or *openSLI
}

// reference is a name that must resolve to a definition of kind; resolved
// runs once it does, to check what depends on the target (a probe's
// burn-rate window against its SLO's windows, for example).
type reference struct {
	// optional references may name a definition that is not loaded (an
	// OpenSLO DataSource kept in another repository): resolved runs only
	// when it is.
	optional bool
	d        *decoder
	node     *yaml.Node
	path     string
	kind     string
	name     string
	resolved func(target any)
}

func newLoader(opts LoadOptions) *loader {
	if opts.SlothPeriod <= 0 {
		opts.SlothPeriod = DefaultWindow
	}
	return &loader{opts: opts, set: &Set{}, defs: map[string]map[string]definition{}}
}

// define registers a name; a second definition of the same kind and name
// is an error at the second one, pointing at the first.
func (l *loader) define(d *decoder, kind, name string, nameNode *yaml.Node, target any) {
	if name == "" {
		return
	}
	byName := l.defs[kind]
	if byName == nil {
		byName = map[string]definition{}
		l.defs[kind] = byName
	}
	if first, dup := byName[name]; dup {
		d.errorf(nameNode, "%s %q is already defined at %s", kind, name, first.pos)
		return
	}
	byName[name] = definition{pos: d.pos(nameNode), target: target}
}

// referOptional is refer for a name that may be missing from the set.
func (l *loader) referOptional(d *decoder, node *yaml.Node, path, kind, name string, resolved func(any)) {
	if name == "" {
		return
	}
	l.refs = append(l.refs, reference{optional: true, d: d, node: node, path: path, kind: kind, name: name, resolved: resolved})
}

func (l *loader) refer(d *decoder, node *yaml.Node, path, kind, name string, resolved func(any)) {
	if name == "" {
		return
	}
	l.refs = append(l.refs, reference{d: d, node: node, path: path, kind: kind, name: name, resolved: resolved})
}

// finish resolves references and returns the set with sorted diagnostics.
func (l *loader) finish() (*Set, Diagnostics) {
	for _, r := range l.refs {
		def, ok := l.defs[r.kind][r.name]
		if !ok && r.optional {
			continue
		}
		if !ok {
			names := make([]string, 0, len(l.defs[r.kind]))
			for n := range l.defs[r.kind] {
				names = append(names, n)
			}
			slices.Sort(names) // deterministic suggestions
			r.d.errorf(r.node, "%s: %s %q is not defined%s", r.path, r.kind, r.name, didYouMean(r.name, names))
			continue
		}
		if r.resolved != nil {
			r.resolved(def.target)
		}
	}
	l.applyAlertWindows()
	for _, d := range l.decoders {
		d.flush()
	}
	l.diags.sort()
	return l.set, l.diags
}

// evaluatedWindow reports whether the evaluator computes burn rates over w
// for an SLO of the given window: only those can be gated on.
func evaluatedWindow(w, sloWindow time.Duration) bool {
	return slices.Contains(Windows(sloWindow), w)
}

func windowList(sloWindow time.Duration) string {
	ws := Windows(sloWindow)
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = FormatDuration(w)
	}
	return strings.Join(out, ", ")
}

// FormatDuration prints a duration the Prometheus way ("5m", "30d", "1h30m"
// rather than "1h30m0s") when that loses no precision, as every duration
// slogate shows (window labels, messages, configuration) is printed.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%time.Millisecond == 0 {
		return model.Duration(d).String()
	}
	return d.String()
}
