package evaluator

import (
	"math"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

func TestRingSum(t *testing.T) {
	r := newRing(time.Minute, 10)
	base := time.Unix(0, 0).Add(1000 * time.Minute)
	k0 := r.sliceOf(base)
	for i := int64(0); i < 5; i++ {
		r.put(k0+i, slo.Counts{Bad: 1, Total: 10})
	}
	cases := []struct {
		name       string
		from, to   time.Time
		bad, total float64
		missing    float64
	}{
		{"whole slices", base, base.Add(4 * time.Minute), 4, 40, 0},
		{"half a slice at the start", base.Add(30 * time.Second), base.Add(4 * time.Minute), 3.5, 35, 0},
		{"missing slices after the newest", base.Add(2 * time.Minute), base.Add(7 * time.Minute), 2, 20, 3},
		{"empty range", base, base, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, m := r.sum(tc.from, tc.to)
			if math.Abs(c.Bad-tc.bad) > 1e-9 || math.Abs(c.Total-tc.total) > 1e-9 || math.Abs(m-tc.missing) > 1e-9 {
				t.Errorf("sum = %+v missing %g, want bad %g total %g missing %g", c, m, tc.bad, tc.total, tc.missing)
			}
		})
	}
	// A slot reused by a newer slice no longer answers for the old one.
	r.put(k0+10, slo.Counts{Bad: 9, Total: 9})
	if r.has(k0) {
		t.Error("slice overwritten by one 10 slices newer still reads as present")
	}
	if runs := r.missingIn(k0, k0+10); len(runs) != 2 || runs[0] != [2]int64{k0, k0} || runs[1] != [2]int64{k0 + 5, k0 + 9} {
		t.Errorf("missing runs %v", runs)
	}
}
