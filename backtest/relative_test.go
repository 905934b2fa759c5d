package backtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/backtest"
	"github.com/slogate/slogate/internal/stats"
	"github.com/slogate/slogate/slo"
)

// loadHypothesis loads one hypothesis with a probe on query and tolerance,
// debounced by nothing (failAfter and passAfter 1), as a user writes it.
func loadHypothesis(t *testing.T, query, tolerance string) *slo.Set {
	t.Helper()
	set, diags := slo.LoadBytes("relative.yaml", []byte(fmt.Sprintf(`
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: relative}
spec:
  failAfter: 1
  passAfter: 1
  probes:
    - name: p
      query: %s
      tolerance: %s
`, query, tolerance)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return set
}

// ratioAt is an error ratio of 0.008 that rises to 0.02 (2.5×) from 03:00
// to 04:00.
func ratioAt(t time.Time) float64 {
	if !t.Before(incident) && t.Before(incident.Add(time.Hour)) {
		return 0.02
	}
	return 0.008
}

// baselineFake answers the probe query with ratioAt and its baseline
// (avg_over_time of it over 1h at 1m) with the average of its minutes in
// (t-1h, t], which is what Prometheus computes.
func baselineFake(q string, t time.Time) []sample {
	switch {
	case q == "sum(rate(errors_total[5m]))":
		return []sample{{v: ratioAt(t)}}
	case q == "avg_over_time((sum(rate(errors_total[5m])))[1h:1m])":
		sum := 0.0
		for i := range 60 {
			sum += ratioAt(t.Add(-time.Duration(i) * time.Minute))
		}
		return []sample{{v: sum / 60}}
	}
	panic("unexpected query " + q)
}

// TestBaselineProbe judges a probe against its trailing baseline. The
// baseline of 03:00+m (m minutes into the rise) averages m+1 minutes of
// 0.02 with 59-m of 0.008, 0.008 + 0.0002(m+1): 0.02 is more than 50 %
// over it until m = 25, so the probe fails from 03:00 to 03:25 and passes
// from 03:30, the baseline having caught up. With an offset of 30m the
// baseline is the one of 30 minutes earlier, and the probe fails until
// 03:55.
func TestBaselineProbe(t *testing.T) {
	tests := []struct {
		name, tolerance string
		want            []change
	}{
		{
			name:      "trailing",
			tolerance: "{relativeTo: baseline, baseline: {window: 1h}, maxIncrease: 50%}",
			want: []change{
				{0, "unknown", "pass", "p = 0.008, baseline 0.008: within +50% of baseline(1h)"},
				{36, "pass", "fail", "p = 0.02, baseline 0.0082: not within +50% of baseline(1h)"},
				{42, "fail", "pass", "p = 0.02, baseline 0.0142: within +50% of baseline(1h)"},
			},
		},
		{
			name:      "offset",
			tolerance: "{relativeTo: baseline, baseline: {window: 1h, offset: 30m}, maxIncrease: 50%}",
			want: []change{
				{0, "unknown", "pass", "p = 0.008, baseline 0.008: within +50% of baseline(1h offset 30m)"},
				{36, "pass", "fail", "p = 0.02, baseline 0.008: not within +50% of baseline(1h offset 30m)"},
				{48, "fail", "pass", "p = 0.008, baseline 0.0142: within +50% of baseline(1h offset 30m)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{fn: baselineFake}
			total := 0
			rep, err := backtest.Run(context.Background(), loadHypothesis(t, "sum(rate(errors_total[5m]))", tt.tolerance), backtest.Options{
				Querier: f, From: from, To: to, Progress: func(_, tot int, _ string) { total = tot },
			})
			if err != nil {
				t.Fatal(err)
			}
			if total != 2 || len(f.ranges) != 2 {
				t.Errorf("%d range queries asked, %d planned; want 2 (the value and its baseline)", len(f.ranges), total)
			}
			checkChanges(t, "changes", rep.Hypotheses[0].Changes, tt.want)
		})
	}
}

// latencyAt is the latency of a zone: around 0.3 s (0.28 to 0.32 by the
// minute, 0.28 on every fifth) in both, doubled in zone a from 03:00 to 04:00; zone a has no
// data from 06:00 to 06:25.
func latencyAt(zone string, t time.Time) (float64, bool) {
	v := 0.3 + 0.01*float64((t.Unix()/60*7)%5-2)
	if zone == "a" {
		if !t.Before(from.Add(6*time.Hour)) && t.Before(from.Add(6*time.Hour+25*time.Minute)) {
			return 0, false
		}
		if !t.Before(incident) && t.Before(incident.Add(time.Hour)) {
			v *= 2
		}
	}
	return v, true
}

func zoneFake(q string, t time.Time) []sample {
	for _, zone := range []string{"a", "b"} {
		if strings.Contains(q, `zone="`+zone+`"`) {
			if v, ok := latencyAt(zone, t); ok {
				return []sample{{v: v}}
			}
			return nil
		}
	}
	panic("unexpected query " + q)
}

// TestCompareProbe compares zone a (the experiment) with zone b: more
// than 20 % slower from 03:00 to 04:00; no data from zone a from 06:00 is
// no data, not a pass.
func TestCompareProbe(t *testing.T) {
	set := loadHypothesis(t, "sum(latency_seconds)", `{compare: {control: '{zone="b"}', experiment: '{zone="a"}'}, maxIncrease: 20%}`)
	f := &fake{fn: zoneFake}
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	checkChanges(t, "changes", rep.Hypotheses[0].Changes, []change{
		{0, "unknown", "pass", `p = 0.28, control 0.28: within +20% of control {zone="b"}`},
		{36, "pass", "fail", `p = 0.56, control 0.28: not within +20% of control {zone="b"}`},
		{48, "fail", "pass", `p = 0.28, control 0.28: within +20% of control {zone="b"}`},
		{72, "pass", "unknown", `p: no data`},
		{77, "unknown", "pass", `p = 0.28, control 0.28: within +20% of control {zone="b"}`},
	})
}

// TestMannWhitneyProbe tests zone a against zone b on the samples of the
// trailing 30 minutes, every minute: 31 of each at every step. The
// verdict of every step must be the one stats.Test decides on the samples
// of exactly that window (worked out here from the fake's own functions);
// and the run must show what the test says: pass on equal zones, fail
// while zone a is twice as slow, unknown (never pass) while zone a's gap
// leaves fewer than 10 samples in the window.
func TestMannWhitneyProbe(t *testing.T) {
	set := loadHypothesis(t, "sum(latency_seconds)",
		`{compare: {control: '{zone="b"}', experiment: '{zone="a"}', window: 30m, step: 1m}, test: mann-whitney, minEffect: 10%, confidence: 95%}`)
	f := &fake{fn: zoneFake}
	total := 0
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to, Progress: func(_, tot int, _ string) { total = tot }})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(f.ranges) {
		t.Errorf("%d range queries asked, %d planned", len(f.ranges), total)
	}

	// Both groups asked once each, at 1m from the window before the first step.
	var samples int
	for _, r := range f.ranges {
		if r.Step == time.Minute {
			samples++
			if !r.Start.Equal(from.Add(-30*time.Minute)) || !r.End.Equal(to) {
				t.Errorf("samples asked over %s..%s, want %s..%s", r.Start, r.End, from.Add(-30*time.Minute), to)
			}
		}
	}
	if samples != 2 {
		t.Errorf("%d range queries at 1m, want 2 (control and experiment)", samples)
	}

	test := stats.Test{Confidence: 0.95, MinEffect: 0.1, MinSamples: 10}
	var want []backtest.Change
	prev := slo.Unknown
	steps := int(to.Sub(from)/backtest.DefaultStep) + 1
	for k := range steps {
		at := from.Add(time.Duration(k) * backtest.DefaultStep)
		var control, experiment []float64
		for m := at.Add(-30 * time.Minute); !m.After(at); m = m.Add(time.Minute) {
			if v, ok := latencyAt("b", m); ok {
				control = append(control, v)
			}
			if v, ok := latencyAt("a", m); ok {
				experiment = append(experiment, v)
			}
		}
		v := slo.Unknown
		switch test.Decide(control, experiment, 0).Decision {
		case stats.Pass:
			v = slo.Pass
		case stats.Fail:
			v = slo.Fail
		}
		if v != prev {
			want = append(want, backtest.Change{At: at, From: prev, To: v})
			prev = v
		}
	}
	got := rep.Hypotheses[0].Changes
	for _, c := range got {
		t.Logf("%s %s → %s (%s)", clock(c.At), c.From, c.To, c.Reason)
	}
	if len(got) != len(want) {
		t.Fatalf("%d changes %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if !got[i].At.Equal(want[i].At) || got[i].From != want[i].From || got[i].To != want[i].To {
			t.Errorf("change %d: %s %s → %s, want %s %s → %s", i, got[i].At, got[i].From, got[i].To, want[i].At, want[i].From, want[i].To)
		}
	}

	// What the timeline says, by the clock.
	byTime := map[string]backtest.Change{}
	for _, c := range got {
		byTime[clock(c.At)] = c
	}
	first := got[0]
	if !first.At.Equal(from) || first.To != slo.Pass || !strings.Contains(first.Reason, "mann-whitney on 31 experiment and 31 control samples") {
		t.Errorf("first change %+v, want pass at the start on 31 samples of each zone", first)
	}
	var fails []backtest.Change
	for _, c := range got {
		if c.To == slo.Fail {
			fails = append(fails, c)
		}
	}
	if len(fails) != 1 || fails[0].At.Before(incident) || !fails[0].At.Before(incident.Add(30*time.Minute)) ||
		!strings.HasPrefix(fails[0].Reason, "p median = ") || !strings.Contains(fails[0].Reason, "worse by 10% or more") {
		t.Errorf("changes to fail %+v, want one within the first half hour of the slowdown", fails)
	}
	// At 06:25 the window [05:55, 06:25] holds 5 minutes of zone a
	// before its gap and one after.
	if c, ok := byTime["06:25"]; !ok || c.To != slo.Unknown || c.Reason != "p: 31 control and 6 experiment samples, fewer than minSamples 10" {
		t.Errorf("change at 06:25 %+v, want unknown on too few samples of zone a", c)
	}
}
