// Package chaos decides whether chaos experiments may run (the gate) and
// supervises their runs: started through the gate, aborted when a hypothesis
// fails or the SLO budget burns, checked for recovery after they finish, and
// persisted so that a restart loses nothing.
package chaos

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

// Statuses is what the gate and the supervisor read: one published
// snapshot of the evaluator's statuses, never changing under the reader.
// The evaluator implements it.
type Statuses interface {
	Definitions() *slo.Set
	// SLODef is the definition of an SLO evaluated here, including the
	// SLO of one group of a grouped SLO, or else of the definitions; nil
	// if there is none.
	SLODef(name string) *slo.SLO
	SLO(name string) (evaluator.SLOStatus, bool)
	Hypothesis(name string) (evaluator.HypothesisStatus, bool)
	SLOCounts(name string, from, to time.Time) (bad, total float64, complete, ok bool)
	LastCycle() (last, lastGood time.Time)
}

// evaluateGate computes the answer without looking at active runs.
func evaluateGate(st Statuses, exp *slo.Experiment) *api.GateAnswer {
	last, _ := st.LastCycle()
	ans := &api.GateAnswer{Experiment: exp.Name, EvaluatedAt: last, Reasons: []api.Reason{}}
	closed, unknown := false, false
	add := func(r api.Reason, isUnknown bool) {
		if isUnknown {
			unknown = true
		} else {
			closed = true
		}
		ans.Reasons = append(ans.Reasons, r)
	}
	for _, name := range exp.Hypotheses {
		h, ok := st.Hypothesis(name)
		if !ok {
			add(api.Reason{Kind: api.KindHypothesis, Name: name, Message: "hypothesis is not evaluated (yet)"}, true)
			continue
		}
		if !h.Fresh {
			add(api.Reason{Kind: api.KindStale, Name: name, Message: fmt.Sprintf("hypothesis %s has no fresh data: last successful evaluation %s", name, ago(h.LastSuccess, last))}, true)
		}
		switch h.Verdict {
		case slo.Fail:
			add(api.Reason{Kind: api.KindHypothesis, Name: name, Message: fmt.Sprintf("verdict fail since %s", h.Since.UTC().Format(time.RFC3339))}, false)
		case slo.Unknown:
			add(api.Reason{Kind: api.KindHypothesis, Name: name, Message: "verdict unknown"}, true)
		}
		for _, p := range h.Probes {
			if p.Verdict == slo.Pass {
				continue
			}
			add(api.Reason{Kind: api.KindProbe, Name: name + "/" + p.Name, Message: probeMessage(p)}, p.Verdict != slo.Fail)
		}
	}
	for _, name := range exp.SLOs {
		def := checkSLO(st, name, last, add)
		if def == nil || !def.Grouped() || def.GroupPolicyOrDefault() != slo.GroupsEach {
			continue
		}
		// Every group must meet the policy too: one burning group closes
		// the gate even when the aggregate looks healthy.
		s, _ := st.SLO(name)
		switch {
		case s.Groups == nil || !s.Groups.Discovered:
			add(api.Reason{Kind: api.KindSLO, Name: name, Message: fmt.Sprintf("the groups of SLO %s (by %s) are not known yet", name, strings.Join(def.GroupBy, ", "))}, true)
		default:
			for _, member := range s.Groups.Members {
				checkSLO(st, member, last, add)
			}
		}
	}
	switch {
	case closed:
		ans.Status = api.GateClosed
	case unknown && exp.OnUnknown != slo.GateOpen:
		ans.Status = api.GateUnknown
	default:
		ans.Status = api.GateOpen
	}
	return ans
}

// checkSLO adds the reasons why the SLO named name does not allow a run,
// and returns its definition (nil when it is not evaluated here).
func checkSLO(st Statuses, name string, last time.Time, add func(api.Reason, bool)) *slo.SLO {
	def := st.SLODef(name)
	s, ok := st.SLO(name)
	if def == nil || !ok {
		add(api.Reason{Kind: api.KindSLO, Name: name, Message: "SLO is not evaluated by this replica (yet)"}, true)
		return nil
	}
	if !s.Fresh {
		msg := fmt.Sprintf("SLO %s has no fresh data: last successful evaluation %s", name, ago(s.LastSuccess, last))
		if s.Error != "" {
			msg += ": " + s.Error
		}
		add(api.Reason{Kind: api.KindStale, Name: name, Message: msg}, true)
		return def
	}
	g := def.Gate
	// lowTraffic reports whether a window counted too few events to judge
	// and, unless the policy is pass, says so as the check's reason.
	lowTraffic := func(events float64, window time.Duration) bool {
		if g.MinEvents <= 0 || events >= g.MinEvents || math.IsNaN(events) {
			return false
		}
		if g.OnLowTraffic == slo.PolicyPass {
			return true
		}
		add(api.Reason{Kind: api.KindLowTraffic, Name: name, Message: fmt.Sprintf("%s events over %s, fewer than gate.minEvents %s: too little traffic to judge (gate.onLowTraffic: %s)",
			strconv.FormatFloat(math.Round(events), 'f', -1, 64), slo.FormatDuration(window), num(g.MinEvents), g.OnLowTraffic.Verdict())}, g.OnLowTraffic != slo.PolicyFail)
		return true
	}
	if g.MinBudgetRemaining != nil {
		br := float64(s.BudgetRemaining)
		events := math.NaN()
		if ws, ok := s.WindowStatus(def.Window); ok && ws.Complete {
			events = float64(ws.Total)
		}
		switch {
		case lowTraffic(events, def.Window):
		case math.IsNaN(br):
			msg := "error budget remaining is unknown (window incomplete)"
			if ws, ok := s.WindowStatus(def.Window); ok && ws.Coverage.Valid() && ws.Coverage < 1 {
				msg = fmt.Sprintf("error budget remaining is unknown: history covers %s of the %s window (the backend keeps less, and slogate has not run that long); gate.onIncompleteWindow: partial uses the part covered", pct(float64(ws.Coverage)), ws.Window)
			}
			add(api.Reason{Kind: api.KindSLO, Name: name, Message: msg}, true)
		case br < *g.MinBudgetRemaining:
			add(api.Reason{Kind: api.KindSLO, Name: name, Message: fmt.Sprintf("error budget remaining %s < %s", pct(br), pct(*g.MinBudgetRemaining))}, false)
		}
	}
	if g.MaxBurnRate != nil {
		w := g.BurnRateWindow
		if w <= 0 {
			w = time.Hour
		}
		bad, total, complete, _ := st.SLOCounts(name, s.EvaluatedAt.Add(-w), s.EvaluatedAt)
		burn := slo.BurnRate(bad, total, def.Objective)
		switch {
		case !complete:
			add(api.Reason{Kind: api.KindSLO, Name: name, Message: fmt.Sprintf("burn rate over %s is unknown (window incomplete)", slo.FormatDuration(w))}, true)
		case lowTraffic(total, w):
		case burn > *g.MaxBurnRate:
			add(api.Reason{Kind: api.KindSLO, Name: name, Message: fmt.Sprintf("burn rate %s over %s > %s", num(burn), slo.FormatDuration(w), num(*g.MaxBurnRate))}, false)
		}
	}
	return def
}

// gateAnswer is the gate's answer for exp: what the statuses say, then the
// experiment's active runs (read with readErr) and whether runs can be
// stored at all (storeErr).
func gateAnswer(st Statuses, exp *slo.Experiment, active []*store.Run, readErr, storeErr error) *api.GateAnswer {
	ans := evaluateGate(st, exp)
	if readErr != nil {
		// Without the store we cannot know whether a run is active.
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: exp.Name, Message: "cannot read runs: " + readErr.Error()})
		if ans.Status == api.GateOpen {
			ans.Status = api.GateUnknown
		}
		return ans
	}
	for _, r := range active {
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: r.ID, Message: fmt.Sprintf("run %s is %s since %s", r.ID, r.State, r.StartedAt.UTC().Format(time.RFC3339))})
		ans.Status = api.GateClosed
	}
	if storeErr != nil {
		// A run this answer let start could be neither recorded nor
		// supervised: the start would fail, or a run already going would
		// lose its timeline.
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: exp.Name, Message: "runs cannot be stored: " + storeErr.Error()})
		if ans.Status == api.GateOpen {
			ans.Status = api.GateUnknown
		}
	}
	return ans
}

func probeMessage(p evaluator.ProbeStatus) string {
	switch {
	case p.Error != "":
		return fmt.Sprintf("%s: %s (verdict %s)", p.Outcome, p.Error, p.Verdict)
	case p.Value.Valid():
		within := "within"
		if p.Within != nil && !*p.Within {
			within = "not within"
		}
		return fmt.Sprintf("value %s %s tolerance %s (verdict %s)", num(float64(p.Value)), within, p.Tolerance, p.Verdict)
	default:
		return fmt.Sprintf("%s (verdict %s)", p.Outcome, p.Verdict)
	}
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " before the latest cycle"
}

func pct(r float64) string { return strconv.FormatFloat(r*100, 'f', 2, 64) + "%" }

func num(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }
