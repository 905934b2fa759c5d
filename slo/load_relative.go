package slo

import (
	"math"
	"strings"

	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// isRelative reports whether a tolerance node is the map form of a
// relative tolerance (relativeTo or compare) rather than {op, value}.
func isRelative(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "relativeTo" || k == "compare" {
			return true
		}
	}
	return false
}

var boundFields = []string{"maxIncrease", "maxDecrease", "maxDelta"}
var testFields = []string{"test", "confidence", "minEffect", "minSamples", "worse"}

// relative reads a baseline tolerance
//
//	{relativeTo: baseline, baseline: {window: 1h, offset: 0s}, maxIncrease: 50%}
//
// or a control-vs-experiment one, with bounds or a statistical test:
//
//	{compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}, maxIncrease: 20%}
//	{compare: {...}, test: mann-whitney, confidence: 95%, minEffect: 10%}
//
// query is the probe's query (valid when queryOK), which compare
// rewrites into the two groups' queries.
func (d *decoder) relative(n *yaml.Node, path, query string, queryOK bool) *Relative {
	f := d.fields(n, path, append(append([]string{"relativeTo", "baseline", "compare"}, boundFields...), testFields...)...)
	if f.bad {
		return nil
	}
	r := &Relative{}
	ok := true
	switch {
	case f.has("relativeTo") && f.has("compare"):
		d.errorf(n, "%s: set either relativeTo: baseline (the probe's own past) or compare (a control group), not both", path)
		return nil
	case f.has("relativeTo"):
		if v, vn := f.str("relativeTo"); vn != nil && v != "baseline" {
			d.errorf(vn, "%s.relativeTo: unknown value %q; use baseline, or compare: {control: ..., experiment: ...} for a control group", path, v)
			ok = false
		}
		bf := f.sub("baseline", "window", "offset", "step")
		r.Baseline, ok = d.baseline(bf), ok && !bf.bad
		for _, name := range testFields {
			if fn := f.node(name); fn != nil {
				d.errorf(fn, "%s.%s: a statistical test compares two groups; use compare: {control: ..., experiment: ...} instead of relativeTo", path, name)
				ok = false
			}
		}
	default:
		if bn := f.node("baseline"); bn != nil {
			d.errorf(bn, "%s.baseline: only with relativeTo: baseline", path)
			ok = false
		}
		r.Compare = d.compare(f.sub("compare", "control", "experiment", "window", "step"), query, queryOK)
		ok = ok && r.Compare != nil
		if f.has("test") {
			r.Test = d.statTest(f)
			ok = ok && r.Test != nil
		}
	}
	for _, name := range boundFields {
		v, vn, got := d.bound(f, name)
		switch {
		case !got:
			continue
		case r.Test != nil || f.has("test"):
			d.errorf(vn, "%s.%s: a test decides by minEffect and confidence, not by bounds; remove %s or the test", path, name, name)
			ok = false
		case name == "maxDecrease" && v > 1:
			d.errorf(vn, "%s.maxDecrease: %s is more than 100%%: a value cannot decrease by more than all of it", path, vn.Value)
			ok = false
		}
		switch name {
		case "maxIncrease":
			r.MaxIncrease = &v
		case "maxDecrease":
			r.MaxDecrease = &v
		case "maxDelta":
			r.MaxDelta = &v
		}
	}
	if !f.has("test") && r.MaxIncrease == nil && r.MaxDecrease == nil && r.MaxDelta == nil {
		d.errorf(n, "%s: set maxIncrease, maxDecrease or maxDelta (how far from the %s the value may go)%s", path, r.Mode(), testHint(r))
		ok = false
	}
	if !ok {
		return nil
	}
	return r
}

func testHint(r *Relative) string {
	if r.Compare != nil {
		return ", or test: mann-whitney with minEffect"
	}
	return ""
}

func (d *decoder) baseline(f *fields) *BaselineSpec {
	b := &BaselineSpec{Window: DefaultBurnRateWindow, Step: DefaultBaselineStep}
	if w, wn, ok := f.duration("window"); ok {
		b.Window = w
		if w <= 0 {
			d.errorf(wn, "%s.window: must be above 0", f.path)
		}
	}
	if o, _, ok := f.duration("offset"); ok {
		b.Offset = o
	}
	if s, sn, ok := f.duration("step"); ok {
		b.Step = s
		if s <= 0 || s > b.Window {
			d.errorf(sn, "%s.step: must be above 0 and at most the window (%s)", f.path, FormatDuration(b.Window))
		}
	}
	if b.Step > b.Window {
		b.Step = b.Window
	}
	return b
}

func (d *decoder) compare(f *fields, query string, queryOK bool) *CompareSpec {
	if f.bad {
		return nil
	}
	c := &CompareSpec{Window: DefaultCompareWindow, Step: DefaultCompareStep}
	f.require(f.mapping, "", "control", "experiment")
	ok := f.has("control") && f.has("experiment")
	for _, g := range []struct {
		name  string
		sel   *string
		query *string
	}{{"control", &c.Control, &c.ControlQuery}, {"experiment", &c.Experiment, &c.ExperimentQuery}} {
		sel, sn := f.str(g.name)
		if sn == nil {
			ok = false
			continue
		}
		*g.sel = strings.TrimSpace(sel)
		if !queryOK {
			continue
		}
		q, err := groupQuery(query, *g.sel)
		if err != nil {
			d.errorf(sn, "%s.%s: %v", f.path, g.name, err)
			ok = false
			continue
		}
		*g.query = q
	}
	if ok && c.Control == c.Experiment {
		d.errorf(f.node("experiment"), "%s.experiment: the same selector as control; the groups must differ", f.path)
		ok = false
	}
	if w, wn, got := f.duration("window"); got {
		c.Window = w
		if w <= 0 {
			d.errorf(wn, "%s.window: must be above 0", f.path)
			ok = false
		}
	}
	if s, sn, got := f.duration("step"); got {
		c.Step = s
		if s <= 0 || s > c.Window {
			d.errorf(sn, "%s.step: must be above 0 and at most the window (%s)", f.path, FormatDuration(c.Window))
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return c
}

func (d *decoder) statTest(f *fields) *StatTest {
	t := &StatTest{Confidence: DefaultConfidence, MinSamples: DefaultMinSamples, Worse: WorseIncrease}
	ok := true
	if v, vn := f.str("test"); vn != nil {
		t.Method = v
		if v != TestMannWhitney {
			d.errorf(vn, "%s.test: unknown test %q; use %s%s", f.path, v, TestMannWhitney, didYouMean(v, []string{TestMannWhitney}))
			ok = false
		}
	}
	if v, vn, got := f.ratio("confidence"); got {
		t.Confidence = v
		if v < 0.5 || v >= 1 {
			d.errorf(vn, "%s.confidence: %s must be at least 50%% and below 100%% (95%% is usual)", f.path, vn.Value)
			ok = false
		}
	}
	v, vn, got := d.bound(f, "minEffect")
	switch {
	case !got && vn == nil:
		d.errorf(f.mapping, "%s: minEffect is required with a test: the smallest worsening that matters, like 10%% (without it no amount of data could ever pass)", f.path)
		ok = false
	case got && v <= 0:
		d.errorf(vn, "%s.minEffect: must be above 0", f.path)
		ok = false
	}
	t.MinEffect = v
	if mn := f.node("minSamples"); mn != nil {
		m := f.count("minSamples")
		if m < 3 {
			d.errorf(mn, "%s.minSamples: %d is too few to test anything; use at least 3 (10 is the default)", f.path, m)
			ok = false
		}
		t.MinSamples = m
	}
	t.Worse = Direction(f.enum("worse", string(WorseIncrease), string(WorseIncrease), string(WorseDecrease)))
	if t.Worse == WorseDecrease && t.MinEffect >= 1 {
		d.errorf(f.node("minEffect"), "%s.minEffect: a value cannot decrease by 100%% or more", f.path)
		ok = false
	}
	if !ok {
		return nil
	}
	return t
}

// bound reads a non-negative relative or absolute amount: "50%" is 0.5,
// and a plain number is taken as it is (maxIncrease: 2 is +200 %).
func (d *decoder) bound(f *fields, name string) (float64, *yaml.Node, bool) {
	n := f.node(name)
	if n == nil {
		return 0, nil, false
	}
	path := joinPath(f.path, name)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a percentage like \"50%%\" or a number, got %s", path, yamlnode.Describe(n))
		return 0, n, false
	}
	v, err := parseBound(strings.TrimSpace(n.Value))
	if err != nil {
		d.errorf(n, "%s: expected a percentage like \"50%%\" or a number, got %s", path, yamlnode.Describe(n))
		return 0, n, false
	}
	if v < 0 || math.IsInf(v, 0) {
		d.errorf(n, "%s: %s must not be negative", path, n.Value)
		return 0, n, false
	}
	return v, n, true
}

// lowTraffic reads a probe's events and minEvents: a query counting the
// events behind a query probe's value, or for an SLO probe only minEvents
// (the SLO counts its own events).
func (d *decoder) lowTraffic(f *fields, p *Probe, path string) {
	if en := f.node("events"); en != nil {
		if f.has("slo") {
			d.errorf(en, "%s.events: an SLO probe counts the SLO's own events; set only minEvents", path)
		} else {
			p.Events, _ = d.query(en, path+".events", false)
		}
	}
	v, mn, ok := f.num("minEvents")
	if mn == nil {
		if p.Events != "" {
			d.errorf(f.node("events"), "%s.events: counts events for minEvents; set minEvents too", path)
		}
		return
	}
	switch {
	case !ok:
		return
	case v <= 0:
		d.errorf(mn, "%s.minEvents: %s must be above 0", path, mn.Value)
	case f.has("query") && !f.has("events"):
		d.errorf(mn, "%s.minEvents: a query probe needs events: a query counting its events, like sum(increase(http_requests_total{job=\"x\"}[5m]))", path)
	}
	p.MinEvents = v
}
