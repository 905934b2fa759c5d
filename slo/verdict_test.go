package slo

import (
	"math"
	"testing"
	"time"
)

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Pass},
		{[]Verdict{Pass, Pass}, Pass},
		{[]Verdict{Pass, Unknown}, Unknown},
		{[]Verdict{Unknown, Fail, Pass}, Fail},
		{[]Verdict{Pass, ""}, Unknown},
	} {
		if got := Worst(tc.in...); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestPolicyVerdict(t *testing.T) {
	for p, want := range map[Policy]Verdict{PolicyPass: Pass, PolicyFail: Fail, PolicyUnknown: Unknown, "": Unknown} {
		if got := p.Verdict(); got != want {
			t.Errorf("Policy(%q).Verdict() = %s, want %s", p, got, want)
		}
	}
}

func TestDebounce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		raw     Verdict
		want    Verdict
		changed bool
	}
	for _, tc := range []struct {
		name                 string
		failAfter, passAfter int
		steps                []step
	}{
		{"fail at once", 1, 1, []step{{Fail, Fail, true}, {Pass, Pass, true}}},
		{"failAfter 3 needs three fails in a row", 3, 1, []step{
			{Pass, Pass, true}, {Fail, Pass, false}, {Fail, Pass, false}, {Pass, Pass, false},
			{Fail, Pass, false}, {Fail, Pass, false}, {Fail, Fail, true}, {Fail, Fail, false},
		}},
		{"passAfter 2 holds a fail", 1, 2, []step{{Fail, Fail, true}, {Pass, Fail, false}, {Pass, Pass, true}}},
		{"unknown is immediate whatever failAfter", 5, 5, []step{
			{Unknown, Unknown, false}, {Pass, Unknown, false}, {Pass, Unknown, false}, {Pass, Unknown, false},
			{Pass, Unknown, false}, {Pass, Pass, true}, {Unknown, Unknown, true},
		}},
		{"zero thresholds count as one", 0, 0, []step{{Fail, Fail, true}, {Pass, Pass, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Debounce
			for i, s := range tc.steps {
				at := t0.Add(time.Duration(i) * time.Minute)
				before := d.Verdict
				changed := d.Observe(s.raw, at, tc.failAfter, tc.passAfter)
				if d.Verdict != s.want || changed != s.changed {
					t.Fatalf("step %d (raw %s): verdict %s changed %v, want %s changed %v", i, s.raw, d.Verdict, changed, s.want, s.changed)
				}
				switch {
				case i == 0 && !d.Since.Equal(at):
					t.Fatalf("step 0: since %s, want the first observation %s", d.Since, at)
				case i > 0 && changed && !d.Since.Equal(at):
					t.Fatalf("step %d: changed %s -> %s but since is %s", i, before, d.Verdict, d.Since)
				case i > 0 && !changed && d.Since.Equal(at):
					t.Fatalf("step %d: unchanged but since moved to %s", i, at)
				}
			}
		})
	}
}

func TestCheckTiers(t *testing.T) {
	tiers := BurnTiers(30 * 24 * time.Hour) // page: 14.4 over 1h/5m, 6 over 6h/30m
	type burns map[time.Duration]float64
	reader := func(b burns) BurnReader {
		return func(w time.Duration) (float64, bool) {
			v, ok := b[w]
			return v, ok
		}
	}
	h, m := time.Hour, time.Minute
	for _, tc := range []struct {
		name     string
		burns    burns
		firing   bool
		hold     bool
		tierLong time.Duration
		burn     float64
	}{
		{"quiet", burns{h: 1, 5 * m: 1, 6 * h: 0.5, 30 * m: 0.5}, false, false, 0, 1},
		{"fast burn fires the 1h tier", burns{h: 20, 5 * m: 30, 6 * h: 2, 30 * m: 2}, true, false, h, 20},
		{"long window alone is not enough", burns{h: 20, 5 * m: 1, 6 * h: 2, 30 * m: 2}, false, false, 0, 20},
		{"slow burn fires the 6h tier", burns{h: 7, 5 * m: 7, 6 * h: 7, 30 * m: 7}, true, false, 6 * h, 7},
		{"a hole holds", burns{h: 20, 6 * h: 2, 30 * m: 2}, false, true, 0, 2},
		{"a hole does not stop another tier firing", burns{h: 20, 6 * h: 8, 30 * m: 8}, true, false, 6 * h, 8},
		{"no data at all holds", burns{}, false, true, 0, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckTiers(tiers, SeverityPage, reader(tc.burns))
			if c.Firing != tc.firing || c.Hold != tc.hold {
				t.Fatalf("firing %v hold %v, want %v %v", c.Firing, c.Hold, tc.firing, tc.hold)
			}
			if c.Firing && c.Tier.Long != tc.tierLong {
				t.Fatalf("fired tier %s, want %s", c.Tier.Long, tc.tierLong)
			}
			if !(c.BurnRate == tc.burn || math.IsNaN(c.BurnRate) && math.IsNaN(tc.burn)) {
				t.Fatalf("burn rate %v, want %v", c.BurnRate, tc.burn)
			}
		})
	}
}

func TestAlertStateNext(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fire, quiet, hold := TierCheck{Firing: true}, TierCheck{}, TierCheck{Hold: true}
	var a AlertState
	if a = a.Next(fire, true, t0); !a.Firing || !a.Since.Equal(t0) {
		t.Fatalf("firing check: %+v", a)
	}
	if a = a.Next(fire, true, t0.Add(time.Minute)); !a.Since.Equal(t0) {
		t.Fatalf("still firing must keep since %s: %+v", t0, a)
	}
	if a = a.Next(hold, true, t0.Add(2*time.Minute)); !a.Firing || !a.Since.Equal(t0) {
		t.Fatalf("a hole must keep a firing alert: %+v", a)
	}
	if a = a.Next(quiet, true, t0.Add(3*time.Minute)); a.Firing || !a.Since.IsZero() {
		t.Fatalf("quiet check must resolve: %+v", a)
	}
	if a = a.Next(hold, true, t0.Add(4*time.Minute)); a.Firing {
		t.Fatalf("a hole must not raise an alert: %+v", a)
	}
	if a = a.Next(fire, false, t0.Add(5*time.Minute)); a.Firing {
		t.Fatalf("a disabled tier must not fire: %+v", a)
	}
}

func TestJudgeSeries(t *testing.T) {
	tol := &Tolerance{Op: OpLT, Value: 1}
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		policy SeriesPolicy
		values []float64
		index  int
		holds  bool
		ok     bool
	}{
		{"all hold", SeriesAll, []float64{0.1, 0.2}, 0, true, true},
		{"all: the first out of tolerance decides", SeriesAll, []float64{0.1, 3, 4}, 1, false, true},
		{"all: one out of tolerance beats a NaN", SeriesAll, []float64{nan, 3}, 1, false, true},
		{"all: a NaN and nothing failing is no data", SeriesAll, []float64{0.1, nan}, -1, false, false},
		{"any: the first within tolerance decides", SeriesAny, []float64{3, 0.5, 0.1}, 1, true, true},
		{"any: none within tolerance fails", SeriesAny, []float64{3, 4}, 0, false, true},
		{"any: none within and a NaN is no data", SeriesAny, []float64{3, nan}, -1, false, false},
		{"nothing at all is no data", SeriesAll, nil, -1, false, false},
	} {
		h := &Hypothesis{Series: tc.policy}
		i, holds, ok := h.JudgeSeries(tc.values, tol)
		if i != tc.index || holds != tc.holds || ok != tc.ok {
			t.Errorf("%s: (%d, %v, %v), want (%d, %v, %v)", tc.name, i, holds, ok, tc.index, tc.holds, tc.ok)
		}
	}
}
