package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

type probeRow struct {
	Name      string
	Query     string
	SLO       string
	Tolerance string
	Value     string
	Within    cell
	Outcome   cell
	Verdict   string
	Error     string
	// Details are lines under the row: what a relative tolerance compared
	// the value with, a statistical test's state, a low-traffic guard's
	// count.
	Details []cell
}

type hypView struct {
	Name        string
	Verdict     string
	Since       string
	SinceFor    string
	Evaluated   string
	Fresh       bool
	StaleTitle  string
	Streak      string
	Policy      string
	Probes      []probeRow
	Experiments []string
}

type hypothesesPage struct {
	Gates      []gateRow
	Hypotheses []hypView
}

func (s *Server) hypothesesView(snap *evaluator.Snapshot) hypothesesPage {
	defs := snap.Definitions()
	v := hypothesesPage{Gates: s.gates(snap)}
	for _, h := range snap.Hypotheses() {
		v.Hypotheses = append(v.Hypotheses, hypViewOf(h, defs))
	}
	return v
}

func hypViewOf(h evaluator.HypothesisStatus, defs *slo.Set) hypView {
	v := hypView{
		Name: h.Name, Verdict: string(h.Verdict), Fresh: h.Fresh,
		Since: fmtTime(h.Since), Evaluated: fmtTime(h.EvaluatedAt),
	}
	if !h.Since.IsZero() && !h.EvaluatedAt.IsZero() {
		v.SinceFor = "for " + fmtDur(h.EvaluatedAt.Sub(h.Since))
	}
	if !h.Fresh {
		v.StaleTitle = "a probe query failed; last successful evaluation: " + fmtTime(h.LastSuccess)
	}
	if h.Streak > 0 {
		v.Streak = strconv.Itoa(h.Streak) + "× " + string(h.RawStreak) + " in a row"
	}
	def := defs.Hypothesis(h.Name)
	if def != nil {
		v.Policy = hypothesisPolicy(def)
	}
	for _, e := range defs.Experiments {
		for _, n := range e.Hypotheses {
			if n == h.Name {
				v.Experiments = append(v.Experiments, e.Name)
			}
		}
	}
	for _, p := range h.Probes {
		r := probeRowOf(p)
		r.Details = probeDetails(p, defProbe(def, p.Name))
		if p.Baseline != nil {
			r.Value = fmtNum(p.Value) // as precise as the reference it is compared with
		}
		v.Probes = append(v.Probes, r)
	}
	return v
}

func hypothesisPolicy(h *slo.Hypothesis) string {
	s := "fail after " + strconv.Itoa(max(h.FailAfter, 1)) + " · pass after " + strconv.Itoa(max(h.PassAfter, 1)) +
		" · no data: " + policyName(h.OnNoData) + " · error: " + policyName(h.OnError) + " · series: " + seriesName(h.Series)
	for _, p := range h.Probes {
		if p.MinEvents > 0 {
			return s + " · low traffic: " + policyName(h.OnLowTraffic)
		}
	}
	return s
}

func policyName(p slo.Policy) string {
	if p == "" {
		return string(slo.PolicyUnknown)
	}
	return string(p)
}

func seriesName(p slo.SeriesPolicy) string {
	if p == "" {
		return string(slo.SeriesAll)
	}
	return string(p)
}

// probeRowOf keeps the cases apart that other tools blur: a value outside
// the tolerance, no data, NaN and a failed query each read differently.
func probeRowOf(p evaluator.ProbeStatus) probeRow {
	r := probeRow{Name: p.Name, Query: p.Query, SLO: p.SLO, Tolerance: p.Tolerance, Verdict: string(p.Verdict), Error: p.Error}
	r.Value = "–"
	if p.Value.Valid() {
		r.Value = fmtFloat(float64(p.Value))
	}
	switch {
	case p.Within == nil:
		r.Within = cell{Text: "–", Class: "muted", Title: "no value to compare"}
	case *p.Within:
		r.Within = cell{Text: "✓ within", Class: "ok"}
	default:
		r.Within = cell{Text: "✗ outside", Class: "bad"}
	}
	r.Outcome = cell{Text: p.Outcome}
	switch p.Outcome {
	case "value":
	case "several series":
		r.Outcome.Text += " (" + strconv.Itoa(p.Series) + ")"
	case "error":
		r.Outcome.Class = "bad"
	default:
		r.Outcome.Class = "warn"
	}
	return r
}

// defProbe is the probe of h named name; nil if either went away.
func defProbe(h *slo.Hypothesis, name string) *slo.Probe {
	if h == nil {
		return nil
	}
	for _, p := range h.Probes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// probeDetails are the lines under a probe's row: what a relative
// tolerance compared the value with and where that came from, a
// statistical test's samples, p-values and decision, and a low-traffic
// guard's count. def is the probe's definition (nil if it went away: the
// lines then say less).
func probeDetails(p evaluator.ProbeStatus, def *slo.Probe) []cell {
	var rel *slo.Relative
	var minEvents float64
	if def != nil {
		rel, minEvents = def.Relative, def.MinEvents
	}
	var out []cell
	if b := p.Baseline; b != nil {
		out = append(out, referenceLine(p.Value, b, rel))
		if b.Test != nil {
			out = append(out, testLine(b.Mode, b.Test))
		}
	}
	if p.Events != nil {
		c := cell{Text: "events " + fmtCount(*p.Events), Class: "muted"}
		switch {
		case p.Outcome == evaluator.OutcomeLowTraffic && minEvents > 0:
			c.Text += " · fewer than minEvents " + fmtCount(evaluator.Num(minEvents)) + ": low traffic, not judged on its value"
			c.Class = "warn"
		case p.Outcome == evaluator.OutcomeLowTraffic:
			c.Text += " · low traffic, not judged on its value"
			c.Class = "warn"
		case minEvents > 0:
			c.Text += " (minEvents " + fmtCount(evaluator.Num(minEvents)) + ")"
		}
		out = append(out, c)
	}
	return out
}

// referenceLine is the value beside its reference, like "value 0.03 ·
// baseline 0.0004 (1h before the run, frozen) · +7500%".
func referenceLine(value evaluator.Num, b *evaluator.ProbeBaseline, rel *slo.Relative) cell {
	valueName, refName := "value", b.Mode
	var cmp *slo.CompareSpec
	if rel != nil {
		cmp = rel.Compare
	}
	switch b.Mode {
	case "baseline":
	case slo.TestMannWhitney:
		valueName, refName = "experiment median", "control median"
	default:
		valueName, refName = "experiment", "control"
		if cmp != nil {
			valueName += " " + cmp.Experiment
			refName += " " + cmp.Control
		}
	}
	c := cell{Text: valueName + " " + fmtNum(value) + " · " + refName + " " + fmtNum(b.Value), Class: "muted"}
	if when := referenceWhen(b, rel); when != "" {
		c.Text += " (" + when + ")"
	}
	if ch := relativeChange(value, b.Value); ch != "" {
		c.Text += " · " + ch
	}
	if !b.From.IsZero() && !b.To.IsZero() {
		c.Title = fmtTime(b.From) + " – " + fmtTime(b.To)
	}
	return c
}

// referenceWhen says where a reference comes from: the window of a
// baseline, the span of a test's samples, and whether a run froze it.
func referenceWhen(b *evaluator.ProbeBaseline, rel *slo.Relative) string {
	span := b.To.Sub(b.From)
	switch {
	case b.Mode == "baseline":
		var offset time.Duration
		if rel != nil && rel.Baseline != nil {
			offset = rel.Baseline.Offset
		}
		switch {
		case b.Frozen && offset > 0:
			return windowLabel(span) + " ending " + windowLabel(offset) + " before the run, frozen"
		case b.Frozen:
			return windowLabel(span) + " before the run, frozen"
		case offset > 0:
			return windowLabel(span) + " ending " + windowLabel(offset) + " ago, trailing"
		}
		return "last " + windowLabel(span) + ", trailing"
	case b.Test != nil:
		every := ""
		if rel != nil && rel.Compare != nil {
			every = " every " + windowLabel(rel.Compare.Step)
			if !b.Frozen {
				span = rel.Compare.Window
			}
		}
		if b.Frozen {
			return "samples" + every + " since the run started, " + b.From.UTC().Format("15:04:05") + " UTC"
		}
		return "samples" + every + " over the last " + windowLabel(span)
	}
	return "at the same time"
}

// relativeChange is how far value is from ref, in percent of ref: what
// maxIncrease and maxDecrease bound.
func relativeChange(value, ref evaluator.Num) string {
	if !value.Valid() || !ref.Valid() || ref == 0 {
		return ""
	}
	ch := (float64(value) - float64(ref)) / math.Abs(float64(ref)) * 100
	digits := 0
	if math.Abs(ch) < 10 {
		digits = 1
	}
	s := strconv.FormatFloat(ch, 'f', digits, 64)
	switch {
	case strings.Trim(s, "-0.") == "":
		return "±0%"
	case ch > 0:
		return "+" + s + "%"
	}
	return "−" + s[1:] + "%"
}

// testLine is a statistical test's state: the samples of both groups, the
// p-values against the level of this look, and the decision.
func testLine(method string, t *evaluator.TestStatus) cell {
	decision := t.Decision
	c := cell{Class: "warn"}
	switch decision {
	case "pass":
		c.Class = "ok"
	case "fail":
		c.Class = "bad"
	case "too-few":
		decision = "too few samples"
	}
	c.Text = fmt.Sprintf("%s: %d control and %d experiment samples (at least %d) · p-value of worse %s, of not worse %s, level %s · decision %s",
		method, t.ControlSamples, t.ExperimentSamples, t.MinSamples, fmtP(t.PFail), fmtP(t.PPass), fmtP(t.Alpha), decision)
	c.Title = "the test fails when worse by at least minEffect is shown at the level, passes when a worsening that large is ruled out at it, and waits otherwise"
	return c
}

func fmtP(p evaluator.Num) string {
	if !p.Valid() {
		return "–"
	}
	return strconv.FormatFloat(float64(p), 'g', 2, 64)
}

// fmtNum writes a value compared with a reference to three significant
// digits: fmtFloat's three decimals would show an error ratio of 0.0304
// beside a baseline of 0.0004 as 0.03.
func fmtNum(n evaluator.Num) string {
	v := float64(n)
	if !n.Valid() {
		return "–"
	}
	if math.Abs(v) >= 1000 {
		return fmtFloat(v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
