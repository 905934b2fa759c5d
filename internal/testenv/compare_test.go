package testenv_test

import (
	"math"
	"testing"

	"github.com/slogate/slogate/internal/testenv"
)

func TestRelErr(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name      string
		got, want float64
		ok        bool // within 0.5 %
	}{
		{"equal", 0.002, 0.002, true},
		{"close", 0.002005, 0.002, true},
		{"off", 0.0021, 0.002, false},
		{"zero against zero", 0, 0, true},
		{"something against zero", 1e-9, 0, false},
		{"zero against something", 0, 1e-9, false},
		{"negative budgets", -1.001, -1, true},
		{"NaN got", nan, 0, false},
		{"NaN want", 0, nan, false},
		{"NaN both", nan, nan, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if rel := testenv.RelErr(tc.got, tc.want); (rel <= 0.005) != tc.ok {
				t.Errorf("RelErr(%g, %g) = %g: within 0.5 %% %v, want %v", tc.got, tc.want, rel, !tc.ok, tc.ok)
			}
		})
	}
}
