package slo

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MarshalNative writes set as native slogate.dev/v1 documents: SLOs, then
// hypotheses, then experiments, each in the order of the set, separated by
// ---. Loading the result with LoadBytes gives back the same definitions
// (positions aside), whatever format they were read from: this is how
// `slogate convert` turns Sloth and OpenSLO files into slogate's own.
//
// Fields at their default are left out, so that the output reads like a
// file written by hand; the SLO window and the probe burn-rate windows are
// always written, since a reader of a converted file should not have to
// know the defaults of the format it came from. Shares are written as
// percentages ("25%") when that notation reads back as the same float and
// is not longer, and as ratios otherwise, so that nothing is rounded on
// the way.
//
// MarshalNative refuses definitions that the loader would refuse to read
// back (an SLO without an indicator, a query probe without a tolerance),
// rather than writing a file that fails later.
func MarshalNative(set *Set) ([]byte, error) {
	if set == nil {
		return nil, errors.New("marshal: nil set")
	}
	var docs []*yaml.Node
	var errs []error
	for _, o := range set.SLOs {
		doc, err := sloDocument(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("SLO %q: %w", o.Name, err))
			continue
		}
		docs = append(docs, doc)
	}
	for _, h := range set.Hypotheses {
		doc, err := hypothesisDocument(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("hypothesis %q: %w", h.Name, err))
			continue
		}
		docs = append(docs, doc)
	}
	for _, e := range set.Experiments {
		docs = append(docs, experimentDocument(e))
	}
	for _, aw := range set.AlertWindows {
		docs = append(docs, alertWindowsDocument(aw))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, nil // nothing to write (an encoder closed unused fails)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, doc := range docs {
		if err := enc.Encode(doc); err != nil {
			return nil, fmt.Errorf("marshal: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	return buf.Bytes(), nil
}

// document starts a native document: apiVersion, kind and metadata.
func document(kind, name string, labels map[string]string) (doc, spec *mapping) {
	doc = newMapping()
	doc.str("apiVersion", APIVersion)
	doc.str("kind", kind)
	meta := doc.sub("metadata")
	meta.str("name", name)
	meta.strMap("labels", labels)
	return doc, doc.sub("spec")
}

func sloDocument(o *SLO) (*yaml.Node, error) {
	doc, spec := document(KindSLO, o.Name, o.Labels)
	spec.str("service", o.Service)
	if o.Description != "" {
		spec.str("description", o.Description)
	}
	spec.num("objective", o.Objective)
	if c := o.Calendar; c != nil {
		w := spec.sub("window")
		w.str("calendar", string(c.Unit))
		w.str("timeZone", c.location().String())
		if !c.Anchor.IsZero() {
			w.str("start", c.Anchor.In(c.location()).Format(time.DateTime))
		}
	} else {
		spec.duration("window", o.Window)
	}

	ind := spec.sub("indicator")
	switch i := o.Indicator; {
	case i.Ratio != nil && i.Latency == nil && i.Raw == nil:
		r := ind.sub("ratio")
		switch {
		case i.Ratio.Errors != "" && i.Ratio.Good == "":
			r.str("errors", i.Ratio.Errors)
		case i.Ratio.Good != "" && i.Ratio.Errors == "":
			r.str("good", i.Ratio.Good)
		default:
			return nil, errors.New("a ratio indicator needs exactly one of errors and good")
		}
		if i.Ratio.Total == "" {
			return nil, errors.New("a ratio indicator needs a total query")
		}
		r.str("total", i.Ratio.Total)
	case i.Latency != nil && i.Ratio == nil && i.Raw == nil:
		l := ind.sub("latency")
		l.str("histogram", i.Latency.Histogram)
		l.num("threshold", i.Latency.Threshold)
		if i.Latency.Native {
			l.boolean("native", true)
		}
	case i.Raw != nil && i.Ratio == nil && i.Latency == nil:
		ind.sub("raw").str("errorRatio", i.Raw.ErrorRatio)
	case i.Threshold != nil && i.Ratio == nil && i.Latency == nil && i.Raw == nil:
		th := ind.sub("threshold")
		th.str("query", i.Threshold.Query)
		th.str("tolerance", i.Threshold.Tolerance.String())
	default:
		return nil, errors.New("the indicator must have exactly one of ratio, latency, raw and threshold")
	}
	if ts := o.Timeslices; ts != nil {
		m := newMapping()
		m.duration("window", ts.Window)
		if ts.Target != 0 {
			m.share("target", ts.Target)
		}
		if ts.Ratio {
			m.str("method", "ratioTimeslices")
		}
		if ts.NoData != "" && ts.NoData != SliceSkip {
			m.str("noData", string(ts.NoData))
		}
		spec.optional("timeslices", m)
	}
	if len(o.GroupBy) > 0 {
		spec.strList("groupBy", o.GroupBy)
		if o.MaxGroups > 0 {
			spec.num("maxGroups", float64(o.MaxGroups))
		}
	}

	a := o.Alerting
	alerting := newMapping()
	if !a.Enabled {
		alerting.boolean("enabled", false)
	}
	if a.Name != DefaultAlertName {
		alerting.str("name", a.Name)
	}
	alerting.strMap("labels", a.Labels)
	alerting.strMap("annotations", a.Annotations)
	for _, tier := range []struct {
		key string
		t   AlertTier
	}{{"page", a.Page}, {"ticket", a.Ticket}} {
		m := newMapping()
		if !tier.t.Enabled {
			m.boolean("enabled", false)
		}
		m.strMap("labels", tier.t.Labels)
		m.strMap("annotations", tier.t.Annotations)
		if tier.t.MinEvents > 0 {
			m.num("minEvents", tier.t.MinEvents)
		}
		alerting.optional(tier.key, m)
	}
	spec.optional("alerting", alerting)

	g := o.Gate
	gate := newMapping()
	if g.MinBudgetRemaining != nil {
		gate.share("minBudgetRemaining", *g.MinBudgetRemaining)
	}
	if g.MaxBurnRate != nil {
		gate.num("maxBurnRate", *g.MaxBurnRate)
	}
	if g.BurnRateWindow != DefaultBurnRateWindow {
		gate.duration("burnRateWindow", g.BurnRateWindow)
	}
	if g.OnIncompleteWindow != "" {
		gate.str("onIncompleteWindow", string(g.OnIncompleteWindow))
	}
	if g.Groups != "" {
		gate.str("groups", string(g.Groups))
	}
	if g.MinEvents > 0 {
		gate.num("minEvents", g.MinEvents)
	}
	if g.OnLowTraffic != "" {
		gate.str("onLowTraffic", string(g.OnLowTraffic))
	}
	spec.optional("gate", gate)
	rules := newMapping()
	iv := newMapping()
	for _, e := range []struct {
		key string
		d   time.Duration
	}{{"sliError", o.RuleIntervals.SLIError}, {"metadata", o.RuleIntervals.Metadata}, {"alert", o.RuleIntervals.Alert}} {
		if e.d > 0 {
			iv.duration(e.key, e.d)
		}
	}
	rules.optional("intervals", iv)
	rules.strMap("infoLabels", o.InfoLabels)
	spec.optional("rules", rules)
	return doc.node, nil
}

func hypothesisDocument(h *Hypothesis) (*yaml.Node, error) {
	doc, spec := document(KindHypothesis, h.Name, h.Labels)
	probes := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, p := range h.Probes {
		m := newMapping()
		m.str("name", p.Name)
		switch {
		case p.Query != "" && p.SLO == "":
			m.str("query", p.Query)
			switch {
			case p.Relative != nil:
				m.add("tolerance", relativeDocument(p.Relative).node)
			case p.Tolerance != nil:
				m.str("tolerance", p.Tolerance.String())
			default:
				return nil, fmt.Errorf("probe %q: a query probe needs a tolerance", p.Name)
			}
			if p.Events != "" {
				m.str("events", p.Events)
			}
		case p.SLO != "" && p.Query == "":
			if p.BudgetRemaining == nil && p.BurnRate == nil {
				return nil, fmt.Errorf("probe %q: an SLO probe needs budgetRemaining or burnRate", p.Name)
			}
			m.str("slo", p.SLO)
			tol := m.sub("tolerance")
			if p.BudgetRemaining != nil {
				tol.str("budgetRemaining", shareTolerance(*p.BudgetRemaining))
			}
			if p.BurnRate != nil {
				br := tol.sub("burnRate")
				br.duration("window", p.BurnRate.Window)
				br.num("below", p.BurnRate.Below)
			}
		default:
			return nil, fmt.Errorf("probe %q: set exactly one of query and slo", p.Name)
		}
		if p.MinEvents > 0 {
			m.num("minEvents", p.MinEvents)
		}
		probes.Content = append(probes.Content, m.node)
	}
	spec.add("probes", probes)
	if h.FailAfter != 1 {
		spec.num("failAfter", float64(h.FailAfter))
	}
	if h.PassAfter != 1 {
		spec.num("passAfter", float64(h.PassAfter))
	}
	if h.OnNoData != PolicyUnknown {
		spec.str("onNoData", string(h.OnNoData))
	}
	if h.OnError != PolicyUnknown {
		spec.str("onError", string(h.OnError))
	}
	if h.OnLowTraffic != PolicyUnknown {
		spec.str("onLowTraffic", string(h.OnLowTraffic))
	}
	if h.Series != SeriesAll {
		spec.str("series", string(h.Series))
	}
	return doc.node, nil
}

// relativeDocument writes a relative tolerance in the form it is read.
func relativeDocument(r *Relative) *mapping {
	m := newMapping()
	if b := r.Baseline; b != nil {
		m.str("relativeTo", "baseline")
		bm := m.sub("baseline")
		bm.duration("window", b.Window)
		if b.Offset > 0 {
			bm.duration("offset", b.Offset)
		}
		if b.Step != DefaultBaselineStep {
			bm.duration("step", b.Step)
		}
	}
	if c := r.Compare; c != nil {
		cm := m.sub("compare")
		cm.str("control", c.Control)
		cm.str("experiment", c.Experiment)
		if c.Window != DefaultCompareWindow {
			cm.duration("window", c.Window)
		}
		if c.Step != DefaultCompareStep {
			cm.duration("step", c.Step)
		}
	}
	for _, b := range []struct {
		key string
		v   *float64
	}{{"maxIncrease", r.MaxIncrease}, {"maxDecrease", r.MaxDecrease}, {"maxDelta", r.MaxDelta}} {
		if b.v != nil {
			m.num(b.key, *b.v)
		}
	}
	if t := r.Test; t != nil {
		m.str("test", t.Method)
		m.num("confidence", t.Confidence)
		m.num("minEffect", t.MinEffect)
		if t.MinSamples != DefaultMinSamples {
			m.num("minSamples", float64(t.MinSamples))
		}
		if t.Worse != WorseIncrease {
			m.str("worse", string(t.Worse))
		}
	}
	return m
}

// alertWindowsDocument writes custom burn-rate windows as the Sloth
// AlertWindows document they came from: the native format has no place for
// them, and slogate reads this one.
func alertWindowsDocument(aw *AlertWindows) *yaml.Node {
	doc := newMapping()
	doc.str("apiVersion", slothAPIVersion)
	doc.str("kind", slothAlertWindowsKind)
	spec := doc.sub("spec")
	spec.duration("sloPeriod", aw.Period)
	for _, sev := range Severities {
		m := spec.sub(string(sev))
		speed := "quick"
		for _, t := range aw.Tiers {
			if t.Severity != sev {
				continue
			}
			w := m.sub(speed)
			pct, _ := percentOf(t.Budget)
			w.num("errorBudgetPercent", pct)
			w.duration("shortWindow", t.Short)
			w.duration("longWindow", t.Long)
			speed = "slow"
		}
	}
	return doc.node
}

func experimentDocument(e *Experiment) *yaml.Node {
	doc, spec := document(KindExperiment, e.Name, e.Labels)
	spec.strList("hypotheses", e.Hypotheses)
	spec.strList("slos", e.SLOs)
	if e.MaxBudgetSpend > 0 {
		spec.share("maxBudgetSpend", e.MaxBudgetSpend)
	}
	if e.MaxDuration > 0 {
		spec.duration("maxDuration", e.MaxDuration)
	}
	if e.Recovery > 0 {
		spec.duration("recovery", e.Recovery)
	}
	if e.OnUnknown != GateClosed {
		spec.str("onUnknown", string(e.OnUnknown))
	}
	return doc.node
}

// shareTolerance renders a tolerance on a ratio (the error budget
// remaining) with each bound in percent where that reads better.
func shareTolerance(t Tolerance) string {
	if t.Op == OpBetween {
		return "between " + shareText(t.Value) + " and " + shareText(t.Value2)
	}
	return string(t.Op) + " " + shareText(t.Value)
}

// shareText renders a ratio as a percentage ("25%") when that reads back
// (as the loader does: percent / 100) as exactly v and is no longer than
// the ratio itself; otherwise as the ratio. It takes the shortest such
// percentage: 0.07 × 100 is 7.000000000000001 in floating point, yet "7%"
// reads back as 0.07, while 0.333 has no percentage shorter than
// 33.300000000000004 and stays 0.333.
func shareText(v float64) string {
	ratio := formatFloat(v)
	if back, ok := percentOf(v); ok {
		if pct := formatFloat(back); len(pct) <= len(ratio) {
			return pct + "%"
		}
	}
	return ratio
}

// percentOf returns the shortest percentage p with p/100 == v exactly, so
// that a loader dividing by 100 reads v back; ok is false if there is none.
func percentOf(v float64) (p float64, ok bool) {
	for prec := 1; prec <= 17; prec++ {
		back, err := strconv.ParseFloat(strconv.FormatFloat(v*100, 'g', prec, 64), 64)
		if err == nil && back/100 == v {
			return back, true
		}
	}
	return v * 100, false
}

// mapping builds a YAML mapping node key by key, in insertion order.
type mapping struct{ node *yaml.Node }

func newMapping() *mapping { return &mapping{node: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

func (m *mapping) add(key string, value *yaml.Node) {
	m.node.Content = append(m.node.Content, strNode(key), value)
}

// sub adds a nested mapping and returns it.
func (m *mapping) sub(key string) *mapping {
	s := newMapping()
	m.add(key, s.node)
	return s
}

// optional adds a nested mapping unless it is empty, which is how the
// defaults of a block are left out.
func (m *mapping) optional(key string, s *mapping) {
	if len(s.node.Content) > 0 {
		m.add(key, s.node)
	}
}

func (m *mapping) str(key, value string) { m.add(key, strNode(value)) }

// num writes a number untagged: the loader takes !!int and !!float alike,
// and a tag would print 99 as "!!float 99".
func (m *mapping) num(key string, v float64) {
	m.add(key, &yaml.Node{Kind: yaml.ScalarNode, Value: formatFloat(v)})
}

func (m *mapping) boolean(key string, v bool) {
	m.add(key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)})
}

// duration writes whole days as days: SLO windows are thought of as 7d or
// 28d, which Prometheus's notation would print as 1w and 4w.
func (m *mapping) duration(key string, d time.Duration) {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		m.str(key, strconv.FormatInt(int64(d/day), 10)+"d")
		return
	}
	m.str(key, FormatDuration(d))
}

// share writes a ratio as a percentage string or as a plain ratio, as
// shareText decides; the loader reads both.
func (m *mapping) share(key string, v float64) {
	if text := shareText(v); strings.HasSuffix(text, "%") {
		m.str(key, text)
		return
	}
	m.num(key, v)
}

// strMap writes labels or annotations sorted by name; nothing when empty.
func (m *mapping) strMap(key string, values map[string]string) {
	if len(values) == 0 {
		return
	}
	s := m.sub(key)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		s.str(k, values[k])
	}
}

// strList writes names as a flow list, [a, b], as definitions are usually
// written; nothing when empty.
func (m *mapping) strList(key string, values []string) {
	if len(values) == 0 {
		return
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, v := range values {
		seq.Content = append(seq.Content, strNode(v))
	}
	m.add(key, seq)
}

// strNode is a string scalar; the !!str tag makes the encoder quote values
// that would otherwise read back as numbers or booleans ("1", "true").
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
