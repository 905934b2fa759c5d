package web

import (
	"strconv"

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
	if def := defs.Hypothesis(h.Name); def != nil {
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
		v.Probes = append(v.Probes, probeRowOf(p))
	}
	return v
}

func hypothesisPolicy(h *slo.Hypothesis) string {
	return "fail after " + strconv.Itoa(max(h.FailAfter, 1)) + " · pass after " + strconv.Itoa(max(h.PassAfter, 1)) +
		" · no data: " + policyName(h.OnNoData) + " · error: " + policyName(h.OnError) + " · series: " + seriesName(h.Series)
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
