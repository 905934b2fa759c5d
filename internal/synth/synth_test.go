package synth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/synth"
)

// TestHistoryIsRelativeToEnd: the same samples, relative to the end, come
// out for any end: any hour, a month boundary, a minute not on the hour.
func TestHistoryIsRelativeToEnd(t *testing.T) {
	relative := func(end time.Time) []synth.Sample {
		var out []synth.Sample
		synth.History(end, time.Minute).Samples(func(s synth.Sample) {
			s.T = time.Unix(0, 0).Add(s.T.Sub(end))
			s.Bucket = slices.Clone(s.Bucket)
			s.DBucket = slices.Clone(s.DBucket)
			out = append(out, s)
		})
		return out
	}
	ends := []time.Time{
		time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 2, 13, 30, 0, 0, time.UTC),
		time.Date(2026, 12, 4, 17, 31, 0, 0, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("UTC+5:45", 5*3600+45*60)),
	}
	want := relative(ends[0])
	for _, end := range ends[1:] {
		got := relative(end)
		if len(got) != len(want) {
			t.Fatalf("end %s: %d samples, want %d", end, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !g.T.Equal(w.T) || g.Total != w.Total || g.Errors != w.Errors || g.Up != w.Up || g.Sum != w.Sum || g.Skip != w.Skip || !slices.Equal(g.Bucket, w.Bucket) {
				t.Fatalf("end %s: sample %d is %+v, ending %s it is %+v", end, i, g, ends[0], w)
			}
		}
	}
}

// TestHistoryPattern: the incidents, outages, restarts, slow hours, reset
// and gap are where History says, and the samples follow them.
func TestHistoryPattern(t *testing.T) {
	end := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	tr := synth.History(end, time.Minute)
	inc := tr.Incidents()
	if len(inc) != 11 || !inc[len(inc)-1].From.Equal(end.Add(-9*time.Hour-30*time.Minute)) || inc[len(inc)-1].To.Sub(inc[len(inc)-1].From) != time.Hour {
		t.Errorf("incidents %v: want 11 hours, the last from 9.5 hours before the end", inc)
	}
	for i := 1; i < len(inc); i++ {
		if d := inc[i].From.Sub(inc[i-1].From); d != 72*time.Hour {
			t.Errorf("incidents %s and %s are %s apart, want 3 days", inc[i-1].From, inc[i].From, d)
		}
	}
	out := tr.Outages()
	lastOutage := synth.Span{From: end.Add(-20*time.Hour - 30*time.Minute), To: end.Add(-20*time.Hour - 20*time.Minute)}
	lastRestart := synth.Span{From: end.Add(-9 * time.Minute), To: end.Add(-7 * time.Minute)}
	if len(out) != 7+31 || !slices.Contains(out, lastOutage) || out[len(out)-1] != lastRestart {
		t.Errorf("outages %v: want 7 outages (the last %v) and 31 restarts (the last %v)", out, lastOutage, lastRestart)
	}

	at := func(ts time.Time) synth.Sample {
		var found synth.Sample
		tr.Samples(func(s synth.Sample) {
			if s.T.Equal(ts) {
				found = s
				found.DBucket = slices.Clone(s.DBucket)
			}
		})
		return found
	}
	last := inc[len(inc)-1]
	cases := []struct {
		name            string
		t               time.Time
		errRatio        float64
		up              float64
		slow            float64 // share slower than 0.3s
		skip, zeroTotal bool
	}{
		{"quiet", end.Add(-2 * time.Hour), 0.002, 1, 0.01, false, false},
		{"incident starts", last.From, 0.04, 1, 0.01, false, false},
		{"incident's last minute", last.To.Add(-time.Minute), 0.04, 1, 0.01, false, false},
		{"incident over", last.To, 0.002, 1, 0.01, false, false},
		{"outage", lastOutage.From, 0.002, 0, 0.01, false, false},
		{"outage over", lastOutage.To, 0.002, 1, 0.01, false, false},
		{"restart", lastRestart.From.Add(time.Minute), 0.002, 0, 0.01, false, false},
		{"slow hour", end.Add(-3*time.Hour - 30*time.Minute), 0.002, 1, 0.06, false, false},
		{"gap", tr.GapFrom, 0.002, 1, 0.01, true, false},
		{"reset", tr.ResetAt, 0.002, 1, 0.01, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := at(tc.t)
			if !s.T.Equal(tc.t) {
				t.Fatalf("no sample at %s", tc.t)
			}
			slow := (s.DTotal - s.DBucket[2]) / s.DTotal
			if r := s.DErrors / s.DTotal; abs(r-tc.errRatio) > 1e-12 || s.Up != tc.up || abs(slow-tc.slow) > 1e-12 || s.Skip != tc.skip || (s.Total == s.DTotal) != tc.zeroTotal {
				t.Errorf("sample at %s: error ratio %g up %g slow %g skip %v total %g (increment %g); want %g %g %g %v, counters reset %v",
					tc.t, r, s.Up, slow, s.Skip, s.Total, s.DTotal, tc.errRatio, tc.up, tc.slow, tc.skip, tc.zeroTotal)
			}
		})
	}
	if tr.GapFrom.Sub(end) != -5*24*time.Hour+12*time.Hour+30*time.Minute || tr.ResetAt.Sub(end) != -10*24*time.Hour+9*time.Hour+47*time.Minute {
		t.Errorf("gap at %s, reset at %s: want 5 and 10 days back", tr.GapFrom, tr.ResetAt)
	}
}

func abs(v float64) float64 { return max(v, -v) }

func TestCalm(t *testing.T) {
	end := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	tr := synth.History(end, time.Minute)
	inc := tr.Incidents()[0]
	cases := []struct {
		t    time.Time
		want bool
	}{
		{end.Add(-time.Hour), true},
		{end.Add(-25 * time.Hour), true},
		{end.Add(-5 * time.Minute), false}, // the restart ended 2 minutes before
		{inc.From.Add(-3 * time.Minute), true},
		{inc.From.Add(-2 * time.Minute), false},
		{inc.To.Add(time.Minute), false},
		{end.Add(-8 * time.Minute), false}, // restart
		{tr.ResetAt.Add(-time.Minute), false},
		{tr.GapTo, false},
	}
	for _, tc := range cases {
		if got := tr.Calm(tc.t, 3*time.Minute); got != tc.want {
			t.Errorf("Calm(%s) = %v, want %v", tc.t.Sub(end), got, tc.want)
		}
	}
}

// TestTruths: the one-pass truths of several windows are those of
// TruthBetween.
func TestTruths(t *testing.T) {
	end := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	tr := synth.History(end, time.Minute)
	windows := []time.Duration{5 * time.Minute, 24 * time.Hour, 30 * 24 * time.Hour}
	for i, got := range tr.Truths(end, windows...) {
		want := tr.TruthBetween(end.Add(-windows[i]), end)
		if got.Total != want.Total || got.Errors != want.Errors || got.Down != want.Down || got.Duration != want.Duration || got.Slow[0.3] != want.Slow[0.3] {
			t.Errorf("window %s: %+v, TruthBetween %+v", windows[i], got, want)
		}
	}
}

// TestZeroAnchor: without an anchor the pattern follows UTC days from the
// Unix epoch (and does not overflow from the zero time).
func TestZeroAnchor(t *testing.T) {
	// 2026-03-01 is epoch day 20513, which is 2 mod 3.
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tr := synth.Traffic{Job: "x", Start: day.Add(-24 * time.Hour), End: day.Add(48 * time.Hour), Step: time.Minute, BaseRPS: 1, ErrorRatio: 0.01}
	inc := tr.Incidents()
	if len(inc) != 1 || !inc[0].From.Equal(day.Add(14*time.Hour)) {
		t.Errorf("incidents %v: want one, at 14:00 on 2026-03-01", inc)
	}
}
