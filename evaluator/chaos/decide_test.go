package chaos

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

var t0 = time.Date(2026, 11, 28, 5, 33, 0, 0, time.UTC)

func experiment() *slo.Experiment {
	return &slo.Experiment{
		Name: "kill-checkout-pod", Hypotheses: []string{"checkout-steady"}, SLOs: []string{"checkout-availability"},
		MaxBudgetSpend: 0.05, MaxDuration: 15 * time.Minute, Recovery: 2 * time.Minute, OnUnknown: slo.GateClosed,
	}
}

// A run started at t0, in state, finished 5 minutes later if it got that far.
func runIn(state api.RunState, streak int, spent float64) *store.Run {
	r := &store.Run{ID: "r1", Experiment: "kill-checkout-pod", State: state, StartedAt: t0, UnknownStreak: streak, BudgetSpent: spent,
		Timeline: []store.TimelineEntry{{At: t0, Verdict: "running", Message: "run started: gate open"}}}
	if state != api.StateRunning {
		fin := t0.Add(5 * time.Minute)
		r.FinishedAt = &fin
	}
	return r
}

func within(b bool) *bool { return &b }

// Probe statuses as the evaluator reports them.
var (
	probePass    = evaluator.ProbeStatus{Name: "error-rate", Tolerance: "< 0.01", Value: 0.002, Outcome: "value", Within: within(true), Verdict: slo.Pass}
	probeFail    = evaluator.ProbeStatus{Name: "error-rate", Tolerance: "< 0.01", Value: 0.05, Outcome: "value", Within: within(false), Verdict: slo.Fail}
	probeNoData  = evaluator.ProbeStatus{Name: "error-rate", Tolerance: "< 0.01", Value: evaluator.Num(math.NaN()), Outcome: "no data", Verdict: slo.Unknown}
	probeTimeout = evaluator.ProbeStatus{Name: "error-rate", Tolerance: "< 0.01", Value: evaluator.Num(math.NaN()), Outcome: "error", Verdict: slo.Unknown, Error: "query timed out"}
)

// observed is one evaluation of the experiment: the hypothesis with probe
// p (or not evaluated when p is nil) and the SLO's budget spent (unknown
// when NaN).
func observed(p *evaluator.ProbeStatus, spent float64) Observations {
	h := HypothesisObservation{Name: "checkout-steady"}
	if p != nil {
		h.Evaluated = true
		h.Status = evaluator.HypothesisStatus{Name: "checkout-steady", Verdict: p.Verdict, Probes: []evaluator.ProbeStatus{*p}, Fresh: true}
	}
	return Observations{
		Hypotheses: []HypothesisObservation{h},
		SLOs:       []SLOObservation{{Name: "checkout-availability", Spent: spent, Known: !math.IsNaN(spent)}},
	}
}

func TestDecide(t *testing.T) {
	nan := math.NaN()
	openOnUnknown := experiment()
	openOnUnknown.OnUnknown = slo.GateOpen
	tests := []struct {
		name       string
		run        *store.Run
		obs        Observations
		exp        *slo.Experiment // experiment() unless removed
		removed    bool
		at         time.Duration // after t0
		wantState  api.RunState
		wantCause  Cause
		wantReason string
		wantStreak int
		wantSpent  float64
	}{
		// running → running
		{name: "running: everything holds", run: runIn(api.StateRunning, 1, 0.01), obs: observed(&probePass, 0.02), at: time.Minute,
			wantState: api.StateRunning, wantSpent: 0.02},
		{name: "running: budget spent exactly maxBudgetSpend", run: runIn(api.StateRunning, 0, 0), obs: observed(&probePass, 0.05), at: time.Minute,
			wantState: api.StateRunning, wantSpent: 0.05},
		{name: "running: exactly maxDuration", run: runIn(api.StateRunning, 0, 0), obs: observed(&probePass, 0.01), at: 15 * time.Minute,
			wantState: api.StateRunning, wantSpent: 0.01},
		{name: "running: spend is a high-water mark", run: runIn(api.StateRunning, 0, 0.03), obs: observed(&probePass, 0.01), at: time.Minute,
			wantState: api.StateRunning, wantSpent: 0.03},
		{name: "running: budget spent unknown keeps the spend and is no hypothesis unknown", run: runIn(api.StateRunning, 1, 0.03), obs: observed(&probePass, nan), at: time.Minute,
			wantState: api.StateRunning, wantSpent: 0.03},
		{name: "running: first unknown evaluation", run: runIn(api.StateRunning, 0, 0), obs: observed(&probeNoData, 0), at: time.Minute,
			wantState: api.StateRunning, wantStreak: 1},
		{name: "running: unknown tolerated by onUnknown: open", exp: openOnUnknown, run: runIn(api.StateRunning, 5, 0), obs: observed(&probeNoData, 0), at: time.Minute,
			wantState: api.StateRunning, wantStreak: 6},

		// running → aborted, every reason
		{name: "running: hypothesis failed", run: runIn(api.StateRunning, 0, 0), obs: observed(&probeFail, 0.01), at: time.Minute,
			wantState: api.StateAborted, wantCause: CauseHypothesisFailed, wantSpent: 0.01,
			wantReason: "hypothesis failed: checkout-steady: error-rate value 0.05 not within tolerance < 0.01 (verdict fail)"},
		{name: "running: budget spent over maxBudgetSpend", run: runIn(api.StateRunning, 0, 0), obs: observed(&probePass, 0.06), at: time.Minute,
			wantState: api.StateAborted, wantCause: CauseBudgetSpent, wantSpent: 0.06,
			wantReason: "SLO checkout-availability: run spent 6.00% of the error budget, more than maxBudgetSpend 5.00%"},
		{name: "running: longer than maxDuration", run: runIn(api.StateRunning, 0, 0), obs: observed(&probePass, 0.01), at: 15*time.Minute + time.Second,
			wantState: api.StateAborted, wantCause: CauseMaxDuration, wantSpent: 0.01,
			wantReason: "ran longer than maxDuration 15m"},
		{name: "running: unknown for UnknownAbortAfter evaluations", run: runIn(api.StateRunning, 1, 0), obs: observed(&probeTimeout, 0), at: time.Minute,
			wantState: api.StateAborted, wantCause: CauseUnsupervised, wantStreak: 2,
			wantReason: "hypothesis unknown for 2 evaluations, the run cannot be supervised: checkout-steady: error-rate error: query timed out (verdict unknown)"},
		{name: "running: hypothesis not evaluated for UnknownAbortAfter evaluations", run: runIn(api.StateRunning, 1, 0), obs: observed(nil, 0), at: time.Minute,
			wantState: api.StateAborted, wantCause: CauseUnsupervised, wantStreak: 2,
			wantReason: "hypothesis unknown for 2 evaluations, the run cannot be supervised: checkout-steady (not evaluated)"},
		{name: "running: experiment definition removed", removed: true, run: runIn(api.StateRunning, 1, 0.02), at: time.Minute,
			wantState: api.StateAborted, wantCause: CauseExperimentRemoved, wantStreak: 1, wantSpent: 0.02,
			wantReason: "experiment definition was removed"},

		// recovering
		{name: "recovering: an evaluation before the finish says nothing", run: runIn(api.StateRecovering, 0, 0), obs: observed(&probePass, 0), at: 5*time.Minute - time.Second,
			wantState: api.StateRecovering},
		{name: "recovering: hypotheses hold at the finish", run: runIn(api.StateRecovering, 0, 0), obs: observed(&probePass, 0.01), at: 5 * time.Minute,
			wantState: api.StatePassed, wantCause: CauseRecovered, wantSpent: 0.01,
			wantReason: "hypotheses hold after the experiment"},
		{name: "recovering: failing within recovery, over budget and duration, is no abort", run: runIn(api.StateRecovering, 0, 0), obs: observed(&probeFail, 0.5), at: 7*time.Minute - time.Second,
			wantState: api.StateRecovering, wantSpent: 0.5},
		{name: "recovering: unknown within recovery", run: runIn(api.StateRecovering, 3, 0), obs: observed(&probeNoData, 0), at: 6 * time.Minute,
			wantState: api.StateRecovering, wantStreak: 4},
		{name: "recovering: still failing when recovery is over", run: runIn(api.StateRecovering, 0, 0), obs: observed(&probeFail, 0.01), at: 7 * time.Minute,
			wantState: api.StateFailed, wantCause: CauseNotRecovered, wantSpent: 0.01,
			wantReason: "hypotheses did not hold again within recovery 2m: checkout-steady: error-rate value 0.05 not within tolerance < 0.01 (verdict fail)"},
		{name: "recovering: still unknown when recovery is over", run: runIn(api.StateRecovering, 0, 0), obs: observed(nil, 0), at: 8 * time.Minute,
			wantState: api.StateFailed, wantCause: CauseNotRecovered, wantStreak: 1,
			wantReason: "hypotheses did not hold again within recovery 2m: checkout-steady (not evaluated)"},
		{name: "recovering: experiment definition removed", removed: true, run: runIn(api.StateRecovering, 0, 0), at: 6 * time.Minute,
			wantState: api.StateAborted, wantCause: CauseExperimentRemoved,
			wantReason: "experiment definition was removed"},

		// over
		{name: "passed: nothing happens", run: runIn(api.StatePassed, 0, 0.01), obs: observed(&probeFail, 0.5), at: time.Hour,
			wantState: api.StatePassed, wantSpent: 0.01},
		{name: "aborted: nothing happens", removed: true, run: runIn(api.StateAborted, 2, 0), at: time.Hour,
			wantState: api.StateAborted, wantStreak: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tt.exp
			if exp == nil {
				exp = experiment()
			}
			if tt.removed {
				exp = nil
			}
			before := *tt.run
			at := t0.Add(tt.at)
			d := Decide(tt.run, tt.obs, exp, at, Policy{UnknownAbortAfter: 2})
			if d.State != tt.wantState || d.Cause != tt.wantCause || d.Reason != tt.wantReason {
				t.Errorf("Decide = %s (%q) %q\nwant     %s (%q) %q", d.State, d.Cause, d.Reason, tt.wantState, tt.wantCause, tt.wantReason)
			}
			if d.UnknownStreak != tt.wantStreak || d.BudgetSpent != tt.wantSpent {
				t.Errorf("streak %d, spent %v; want %d, %v", d.UnknownStreak, d.BudgetSpent, tt.wantStreak, tt.wantSpent)
			}
			if d.At != at || d.Changed() != (tt.wantCause != "") {
				t.Errorf("At %s, Changed %v", d.At, d.Changed())
			}
			// The measurements, then the state change.
			measured := len(tt.obs.Hypotheses) + len(tt.obs.SLOs)
			if tt.removed || tt.run.State.Terminal() {
				measured = 0
			}
			wantEntries := measured
			if d.Changed() {
				wantEntries++
				last := d.Entries[len(d.Entries)-1]
				if want := (store.TimelineEntry{At: at, Verdict: string(tt.wantState), Message: tt.wantReason}); !cmp.Equal(last, want) {
					t.Errorf("last entry %+v, want the state change %+v", last, want)
				}
			}
			if len(d.Entries) != wantEntries {
				t.Errorf("%d timeline entries, want %d: %+v", len(d.Entries), wantEntries, d.Entries)
			}
			if !cmp.Equal(*tt.run, before) {
				t.Errorf("Decide changed the run: %s", cmp.Diff(before, *tt.run))
			}
		})
	}
}

// TestDecideAbortPrecedence: with several reasons to abort a run at once,
// the first of Decide's order is the one given.
func TestDecideAbortPrecedence(t *testing.T) {
	order := []Cause{CauseHypothesisFailed, CauseBudgetSpent, CauseMaxDuration, CauseUnsupervised}
	exp := experiment()
	exp.Hypotheses = []string{"checkout-steady", "checkout-latency"}
	for set := 1; set < 1<<len(order); set++ {
		has := func(c Cause) bool { return set&(1<<slices.Index(order, c)) != 0 }
		steady, latency := probePass, probePass
		spent, after, streak := 0.01, time.Minute, 0
		if has(CauseHypothesisFailed) {
			steady = probeFail
		}
		if has(CauseBudgetSpent) {
			spent = 0.5
		}
		if has(CauseMaxDuration) {
			after = time.Hour
		}
		if has(CauseUnsupervised) {
			latency, streak = probeNoData, 1
		}
		obs := observed(&steady, spent)
		obs.Hypotheses = append(obs.Hypotheses, HypothesisObservation{Name: "checkout-latency", Evaluated: true,
			Status: evaluator.HypothesisStatus{Name: "checkout-latency", Verdict: latency.Verdict, Probes: []evaluator.ProbeStatus{latency}}})
		var present []string
		for _, c := range order {
			if has(c) {
				present = append(present, string(c))
			}
		}
		t.Run(strings.Join(present, "+"), func(t *testing.T) {
			d := Decide(runIn(api.StateRunning, streak, 0), obs, exp, t0.Add(after), Policy{UnknownAbortAfter: 2})
			if want := Cause(present[0]); d.State != api.StateAborted || d.Cause != want {
				t.Errorf("Decide = %s (%s), want aborted (%s)", d.State, d.Cause, want)
			}
		})
	}
}

// TestDecideTimeline checks what an evaluation writes to the timeline.
func TestDecideTimeline(t *testing.T) {
	at := t0.Add(time.Minute)
	v := func(f float64) *float64 { return &f }
	tests := []struct {
		name string
		obs  Observations
		want []store.TimelineEntry
	}{
		{"pass", observed(&probePass, 0.02), []store.TimelineEntry{
			{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Value: v(0.002), Verdict: "pass"},
			{At: at, SLO: "checkout-availability", Value: v(0.02), Verdict: "pass", Message: "share of the error budget spent since the start"},
		}},
		{"probe error and unknown spend", observed(&probeTimeout, math.NaN()), []store.TimelineEntry{
			{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Verdict: "unknown", Message: "query timed out"},
			{At: at, SLO: "checkout-availability", Verdict: "unknown", Message: "budget spent unknown: SLO data incomplete"},
		}},
		{"not evaluated, over budget", observed(nil, 0.06), []store.TimelineEntry{
			{At: at, Hypothesis: "checkout-steady", Verdict: "unknown"},
			{At: at, SLO: "checkout-availability", Value: v(0.06), Verdict: "fail", Message: "share of the error budget spent since the start"},
			{At: at, Verdict: "aborted", Message: "SLO checkout-availability: run spent 6.00% of the error budget, more than maxBudgetSpend 5.00%"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(runIn(api.StateRunning, 0, 0), tt.obs, experiment(), at, Policy{UnknownAbortAfter: 2})
			if diff := cmp.Diff(tt.want, d.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideStart(t *testing.T) {
	at := t0.In(time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		status  api.GateStatus
		wantErr string
	}{
		{"gate open", api.GateOpen, ""},
		{"gate closed", api.GateClosed, `gate closed: experiment "kill-checkout-pod": closed`},
		{"gate unknown", api.GateUnknown, `gate closed: experiment "kill-checkout-pod": unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecideStart(&api.GateAnswer{Experiment: "kill-checkout-pod", Status: tt.status}, at)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrGateClosed) || err.Error() != tt.wantErr || r != nil {
					t.Fatalf("DecideStart = %v, %v; want ErrGateClosed %q", r, err, tt.wantErr)
				}
				return
			}
			want := &store.Run{Experiment: "kill-checkout-pod", State: api.StateRunning, StartedAt: t0,
				Timeline: []store.TimelineEntry{{At: t0, Verdict: "running", Message: "run started: gate open"}}}
			if err != nil || !cmp.Equal(r, want) {
				t.Fatalf("DecideStart = %+v, %v; want %+v", r, err, want)
			}
		})
	}
}

func TestDecideFinishAndAbort(t *testing.T) {
	at := t0.Add(5 * time.Minute)
	tests := []struct {
		name       string
		do         func(*store.Run) (Decision, error)
		from       api.RunState
		wantState  api.RunState
		wantCause  Cause
		wantReason string
		wantErr    string // ErrConflict with this message
	}{
		{name: "finish running", do: finish(at), from: api.StateRunning,
			wantState: api.StateRecovering, wantCause: CauseFinished, wantReason: "chaos finished; checking recovery"},
		{name: "finish recovering", do: finish(at), from: api.StateRecovering,
			wantErr: "run is not in a state that allows this: run r1 is recovering, only a running run can finish"},
		{name: "finish passed", do: finish(at), from: api.StatePassed,
			wantErr: "run is not in a state that allows this: run r1 is passed, only a running run can finish"},
		{name: "finish aborted", do: finish(at), from: api.StateAborted,
			wantErr: "run is not in a state that allows this: run r1 is aborted, only a running run can finish"},
		{name: "abort running", do: abort("stopped by the on-call", at), from: api.StateRunning,
			wantState: api.StateAborted, wantCause: CauseAbortedByAPI, wantReason: "stopped by the on-call"},
		{name: "abort recovering without a reason", do: abort("", at), from: api.StateRecovering,
			wantState: api.StateAborted, wantCause: CauseAbortedByAPI, wantReason: "aborted through the API"},
		{name: "abort passed", do: abort("", at), from: api.StatePassed,
			wantErr: "run is not in a state that allows this: run r1 already passed"},
		{name: "abort failed", do: abort("", at), from: api.StateFailed,
			wantErr: "run is not in a state that allows this: run r1 already failed"},
		{name: "abort aborted", do: abort("", at), from: api.StateAborted,
			wantErr: "run is not in a state that allows this: run r1 already aborted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.do(runIn(tt.from, 1, 0.02))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConflict) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want ErrConflict %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Decision{At: at, State: tt.wantState, Cause: tt.wantCause, Reason: tt.wantReason, UnknownStreak: 1, BudgetSpent: 0.02,
				Entries: []store.TimelineEntry{{At: at, Verdict: string(tt.wantState), Message: tt.wantReason}}}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func finish(at time.Time) func(*store.Run) (Decision, error) {
	return func(r *store.Run) (Decision, error) { return DecideFinish(r, at) }
}

func abort(reason string, at time.Time) func(*store.Run) (Decision, error) {
	return func(r *store.Run) (Decision, error) { return DecideAbort(r, reason, at) }
}

func TestApply(t *testing.T) {
	fin, end := t0.Add(5*time.Minute), t0.Add(7*time.Minute)
	running := runIn(api.StateRunning, 0, 0)
	running.FinishedAt = nil
	before := *running

	d, _ := DecideFinish(running, fin)
	recovering := d.Apply(running)
	if !cmp.Equal(*running, before) {
		t.Errorf("Apply changed the run: %s", cmp.Diff(before, *running))
	}
	want := &store.Run{ID: "r1", Experiment: "kill-checkout-pod", State: api.StateRecovering, Reason: "chaos finished; checking recovery",
		StartedAt: t0, FinishedAt: &fin,
		Timeline: []store.TimelineEntry{running.Timeline[0], {At: fin, Verdict: "recovering", Message: "chaos finished; checking recovery"}}}
	if diff := cmp.Diff(want, recovering); diff != "" {
		t.Errorf("finished run (-want +got):\n%s", diff)
	}

	d = Decide(recovering, observed(&probePass, 0.01), experiment(), end, Policy{UnknownAbortAfter: 2})
	passed := d.Apply(recovering)
	if passed.State != api.StatePassed || passed.EndedAt == nil || !passed.EndedAt.Equal(end) || !passed.FinishedAt.Equal(fin) ||
		passed.BudgetSpent != 0.01 || len(passed.Timeline) != 5 || len(recovering.Timeline) != 2 {
		t.Errorf("passed run %+v", passed)
	}

	// A decision without a change keeps state and reason, and updates the
	// streak and spend.
	d = Decide(running, observed(&probeNoData, 0.03), experiment(), fin, Policy{UnknownAbortAfter: 2})
	still := d.Apply(running)
	if still.State != api.StateRunning || still.Reason != "" || still.EndedAt != nil || still.FinishedAt != nil || still.UnknownStreak != 1 || still.BudgetSpent != 0.03 {
		t.Errorf("unchanged run %+v", still)
	}
}

// TestDecideCollapsesRepeats: an outcome without a value that repeats the
// last one recorded is counted, not recorded again at every evaluation;
// the next entry of the same probe or SLO carries the count, and a state
// change records everything. Measurements (with a value) are all recorded.
func TestDecideCollapsesRepeats(t *testing.T) {
	exp := experiment()
	exp.OnUnknown = slo.GateOpen // unknowns do not abort: the failure can last
	exp.MaxDuration = 0
	otherTimeout := probeTimeout
	otherTimeout.Error = "query timed out after 10s"
	run := runIn(api.StateRunning, 0, 0)
	at := t0
	step := func(p *evaluator.ProbeStatus, spent float64) Decision {
		at = at.Add(30 * time.Second)
		d := Decide(run, observed(p, spent), exp, at, Policy{UnknownAbortAfter: 2})
		run = d.Apply(run)
		return d
	}
	for range 10 {
		step(&probeTimeout, math.NaN())
	}
	step(&probeTimeout, 0.01) // the spend is known again; the probe still times out
	step(&otherTimeout, 0.01) // another message
	step(&probePass, 0.01)    // a value
	step(&probePass, 0.01)    // a value again: recorded
	step(&probeTimeout, math.NaN())
	step(&probeTimeout, math.NaN())
	last := step(&probeFail, 0.02) // → aborted

	type entry struct {
		Probe, SLO, Verdict, Message string
		Repeats                      int
	}
	var got []entry
	for _, e := range run.Timeline[1:] {
		got = append(got, entry{e.Probe, e.SLO, e.Verdict, e.Message, e.Repeats})
	}
	const spend = "share of the error budget spent since the start"
	const incomplete = "budget spent unknown: SLO data incomplete"
	want := []entry{
		{"error-rate", "", "unknown", "query timed out", 0},
		{"", "checkout-availability", "unknown", incomplete, 0},
		// 9 more evaluations of both, not recorded
		{"", "checkout-availability", "pass", spend, 9},
		{"error-rate", "", "unknown", "query timed out after 10s", 10},
		{"", "checkout-availability", "pass", spend, 0},
		{"error-rate", "", "pass", "", 0},
		{"", "checkout-availability", "pass", spend, 0},
		{"error-rate", "", "pass", "", 0},
		{"", "checkout-availability", "pass", spend, 0},
		{"error-rate", "", "unknown", "query timed out", 0},
		{"", "checkout-availability", "unknown", incomplete, 0},
		// one more evaluation of both, not recorded
		{"error-rate", "", "fail", "", 1},
		{"", "checkout-availability", "pass", spend, 1},
		{"", "", "aborted", last.Reason, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if run.Repeats != nil {
		t.Errorf("repeats %v left after the run ended, want none", run.Repeats)
	}
}

// TestDecideAbortBoundsTheReason: the caller's reason goes into the run,
// its timeline and an alert, cut to MaxAbortReason bytes.
func TestDecideAbortBoundsTheReason(t *testing.T) {
	d, err := DecideAbort(runIn(api.StateRunning, 0, 0), strings.Repeat("é", 10_000), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reason) > MaxAbortReason+64 || !strings.Contains(d.Reason, "more bytes cut]") {
		t.Errorf("reason of %d bytes: %.80q…, want it cut to about %d", len(d.Reason), d.Reason, MaxAbortReason)
	}
	if last := d.Entries[len(d.Entries)-1]; last.Message != d.Reason {
		t.Errorf("timeline message %.80q, want the cut reason", last.Message)
	}
}
