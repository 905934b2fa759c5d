package slo

import (
	"fmt"
	"math"
	"strings"

	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

func (l *loader) hypothesis(d *decoder, top *fields, root *yaml.Node, m meta) *Hypothesis {
	spec := top.sub("spec", "probes", "failAfter", "passAfter", "onNoData", "onError", "onLowTraffic", "series")
	h := &Hypothesis{Name: m.name, Labels: m.labels, Pos: d.pos(root)}
	spec.require(root, m.what, "probes")
	h.FailAfter = spec.count("failAfter")
	h.PassAfter = spec.count("passAfter")
	h.OnNoData = Policy(spec.enum("onNoData", string(PolicyUnknown), "pass", "fail", "unknown"))
	h.OnError = Policy(spec.enum("onError", string(PolicyUnknown), "pass", "fail", "unknown"))
	h.OnLowTraffic = Policy(spec.enum("onLowTraffic", string(PolicyUnknown), "pass", "fail", "unknown"))
	h.Series = SeriesPolicy(spec.enum("series", string(SeriesAll), "all", "any"))

	items := spec.list("probes")
	if spec.has("probes") && len(items) == 0 && spec.node("probes").Kind == yaml.SequenceNode {
		d.errorf(spec.node("probes"), "spec.probes: at least one probe is required")
	}
	seen := map[string]*yaml.Node{}
	for i, item := range items {
		path := fmt.Sprintf("spec.probes[%d]", i)
		if item == nil {
			d.errorf(spec.node("probes"), "%s: expected a probe, got null", path)
			continue
		}
		p, nameNode := l.probe(d, item, path)
		if p == nil {
			continue
		}
		if first, dup := seen[p.Name]; dup && p.Name != "" {
			d.errorf(nameNode, "%s.name: probe %q is already defined at line %d", path, p.Name, first.Line)
		} else {
			seen[p.Name] = nameNode
		}
		h.Probes = append(h.Probes, p)
	}
	return h
}

// probe reads a query probe (query + tolerance) or an SLO probe (slo +
// budgetRemaining and/or burnRate tolerances).
func (l *loader) probe(d *decoder, item *yaml.Node, path string) (*Probe, *yaml.Node) {
	f := d.fields(item, path, "name", "query", "slo", "tolerance", "events", "minEvents")
	if f.bad {
		return nil, nil
	}
	p := &Probe{Pos: d.pos(item)}
	f.require(item, "", "name", "tolerance")
	var nameNode *yaml.Node
	p.Name, nameNode = f.str("name")
	if nameNode != nil {
		if msg := checkName(p.Name); msg != "" {
			d.errorf(nameNode, "%s.name: %q %s", path, p.Name, msg)
		}
	}
	switch {
	case f.has("query") && f.has("slo"):
		d.errorf(item, "%s: set either query or slo, not both", path)
	case !f.has("query") && !f.has("slo"):
		d.errorf(item, "%s: a probe needs a query (with a tolerance) or an slo (with budgetRemaining or burnRate)", path)
	}
	d.lowTraffic(f, p, path)
	if f.has("query") {
		var queryOK bool
		p.Query, queryOK = d.query(f.node("query"), path+".query", false)
		if tn := f.node("tolerance"); tn != nil && isRelative(tn) {
			p.Relative = d.relative(tn, path+".tolerance", p.Query, queryOK)
		} else if tn != nil {
			t, ok := d.tolerance(tn, path+".tolerance")
			if ok {
				p.Tolerance = &t
			}
		}
		return p, nameNode
	}
	if !f.has("slo") {
		return p, nameNode
	}
	var sloNode *yaml.Node
	p.SLO, sloNode = f.str("slo")
	tf := f.sub("tolerance", "budgetRemaining", "burnRate")
	if !tf.bad && tf.mapping != nil && !tf.has("budgetRemaining") && !tf.has("burnRate") {
		d.errorf(tf.mapping, "%s: set budgetRemaining, burnRate or both", tf.path)
	}
	if n := tf.node("budgetRemaining"); n != nil {
		if t, ok := d.tolerance(n, tf.path+".budgetRemaining"); ok {
			p.BudgetRemaining = &t
		}
	}
	var windowNode *yaml.Node
	if tf.has("burnRate") {
		bf := tf.sub("burnRate", "window", "below")
		bf.require(bf.mapping, "", "below")
		br := &BurnRateTolerance{Window: DefaultBurnRateWindow}
		if w, n, ok := bf.duration("window"); ok {
			br.Window, windowNode = w, n
		}
		if v, n, ok := bf.num("below"); ok {
			br.Below = v
			if v <= 0 {
				d.errorf(n, "%s.below: %s is not above 0", bf.path, formatFloat(v))
			}
		}
		if !bf.bad && bf.mapping != nil {
			p.BurnRate = br
			if windowNode == nil {
				windowNode = bf.mapping
			}
		}
	}
	if sloNode != nil {
		burnPath := tf.path + ".burnRate.window"
		l.refer(d, sloNode, path+".slo", KindSLO, p.SLO, func(target any) {
			o := target.(*SLO)
			if p.BurnRate != nil && !evaluatedWindow(p.BurnRate.Window, o.Window) {
				d.errorf(windowNode, "%s: burn rates of SLO %q are not evaluated over %s; use one of %s",
					burnPath, o.Name, FormatDuration(p.BurnRate.Window), windowList(o.Window))
			}
		})
	}
	return p, nameNode
}

// tolerance reads the string form ("< 0.01") or the map form
// ({op: "<", value: 0.01}; {op: between, value: 0, value2: 0.5}).
func (d *decoder) tolerance(n *yaml.Node, path string) (Tolerance, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		t, err := ParseTolerance(n.Value)
		if err != nil {
			d.errorf(n, "%s: %v", path, err)
			return Tolerance{}, false
		}
		return t, true
	case yaml.MappingNode:
		f := d.fields(n, path, "op", "value", "value2")
		f.require(n, "", "op", "value")
		op, opNode := f.str("op")
		t := Tolerance{Op: Op(strings.TrimSpace(op))}
		v, _, ok1 := f.num("value")
		v2, v2Node, ok2 := f.num("value2")
		t.Value, t.Value2 = v, v2
		switch {
		case opNode == nil || !ok1:
			return t, false
		case t.Op == OpBetween && v2Node == nil:
			d.errorf(n, "%s: value2 (the upper bound) is required with op between", path)
			return t, false
		case t.Op != OpBetween && v2Node != nil:
			d.errorf(v2Node, "%s.value2: only op between takes an upper bound", path)
			return t, false
		case v2Node != nil && !ok2:
			return t, false
		}
		if err := t.Validate(); err != nil {
			at := n
			if t.Op != OpBetween {
				at = opNode
			}
			d.errorf(at, "%s: %v", path, err)
			return t, false
		}
		return t, true
	}
	d.errorf(n, "%s: expected a tolerance like \"< 0.01\" or {op: \"<\", value: 0.01}, got %s", path, yamlnode.Describe(n))
	return Tolerance{}, false
}

// count reads a whole number >= 1, defaulting to 1.
func (f *fields) count(name string) int {
	v, n, ok := f.num(name)
	switch {
	case !ok:
		return 1
	case v != math.Trunc(v):
		f.d.errorf(n, "%s: expected a whole number, got %s", joinPath(f.path, name), formatFloat(v))
		return 1
	case v < 1 || v > math.MaxInt32:
		f.d.errorf(n, "%s: %s is out of range: it must be at least 1", joinPath(f.path, name), formatFloat(v))
		return 1
	}
	return int(v)
}

// enum reads one of allowed, defaulting to def.
func (f *fields) enum(name, def string, allowed ...string) string {
	v, n := f.str(name)
	if n == nil {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	f.d.errorf(n, "%s: unknown value %q; use %s%s", joinPath(f.path, name), v, orList(allowed), didYouMean(v, allowed))
	return def
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func (l *loader) experiment(d *decoder, top *fields, root *yaml.Node, m meta) *Experiment {
	spec := top.sub("spec", "hypotheses", "slos", "maxBudgetSpend", "maxDuration", "recovery", "onUnknown")
	e := &Experiment{Name: m.name, Labels: m.labels, Pos: d.pos(root)}
	var hypNodes, sloNodes []*yaml.Node
	e.Hypotheses, hypNodes = spec.strList("hypotheses")
	e.SLOs, sloNodes = spec.strList("slos")
	notList := func(name string) bool { n := spec.node(name); return n != nil && n.Kind != yaml.SequenceNode }
	if spec.mapping != nil && !spec.bad && len(e.Hypotheses)+len(e.SLOs) == 0 && !notList("hypotheses") && !notList("slos") {
		d.errorf(root, "%s: spec needs at least one hypothesis or SLO (spec.hypotheses, spec.slos)", m.what)
	}
	l.referAll(d, "spec.hypotheses", KindHypothesis, e.Hypotheses, hypNodes)
	l.referAll(d, "spec.slos", KindSLO, e.SLOs, sloNodes)
	if v, n, ok := spec.ratio("maxBudgetSpend"); ok {
		e.MaxBudgetSpend = v
		switch {
		case v <= 0:
			d.errorf(n, "spec.maxBudgetSpend: must be above 0%% (leave it out for no limit)")
		case len(e.SLOs) == 0:
			d.warnf(n, "spec.maxBudgetSpend: has no effect without slos to spend the budget of")
		}
	}
	if v, n, ok := spec.duration("maxDuration"); ok {
		e.MaxDuration = v
		if v <= 0 {
			d.errorf(n, "spec.maxDuration: must be above 0 (leave it out for no limit)")
		}
	}
	if v, _, ok := spec.duration("recovery"); ok {
		e.Recovery = v
	}
	e.OnUnknown = GateMode(spec.enum("onUnknown", string(GateClosed), "closed", "open"))
	return e
}

// referAll records references from a list of names; a name listed twice
// is an error since it hints at a copy-paste slip.
func (l *loader) referAll(d *decoder, path, kind string, names []string, nodes []*yaml.Node) {
	seen := map[string]bool{}
	for i, name := range names {
		if seen[name] {
			d.errorf(nodes[i], "%s: %q is listed twice", path, name)
			continue
		}
		seen[name] = true
		l.refer(d, nodes[i], path, kind, name, nil)
	}
}
