package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// Published p-values of the normal approximation with tie and continuity
// corrections. A published two-sided value is twice the smaller one-sided
// one (scipy and R both compute it so), so the test doubles the one-sided
// p of the sample whose U is above its mean; R's W is U of its first
// sample, and a case whose W is below the mean swaps the samples here.
// tol is half a unit of the last published digit.
func TestMannWhitneyGreaterPublished(t *testing.T) {
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	// R, "An Introduction to R", §8.3: latent heat of fusion of ice (Rice
	// 1995, p. 490), methods A and B; several ties within and across them.
	heatA := []float64{79.98, 80.04, 80.02, 80.04, 80.03, 80.03, 80.04, 79.97, 80.05, 80.03, 80.02, 80.00, 80.02}
	heatB := []float64{80.02, 79.94, 79.98, 79.97, 79.97, 80.03, 79.95, 79.97}
	// endmemo's wilcox.test page: x has a tie (21, 21) and ties with y.
	endX := []float64{1, 5, 9, 24, 56, 21, 3, 7, 21, 4}
	endY := []float64{12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5}
	endY2 := []float64{1233, 4356, 987, 39999, 1111, 200000}
	// NAG g08amc example data: two groups of integers full of ties.
	nag1 := []float64{13, 6, 12, 7, 12, 7, 10, 7, 10, 7, 16, 7, 10, 8, 9, 8}
	nag2 := []float64{17, 6, 10, 8, 15, 8, 15, 10, 15, 10, 14, 10, 14, 11, 14, 11, 13, 12, 13, 12, 13, 12, 12}

	tests := []struct {
		name      string
		x, y      []float64
		wantU     float64
		published float64 // as printed by the source
		sides     float64 // 2 when published is two-sided
		tol       float64 // on published
	}{
		{
			// https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.mannwhitneyu.html
			// mannwhitneyu(males, females, method="asymptotic") prints
			// 0.11134688653314041 (two-sided), U1 = 17.
			name: "scipy males females", x: males, y: females,
			wantU: 17, published: 0.11134688653314041, sides: 2, tol: 1e-15,
		},
		{
			// https://clickhouse.com/docs/sql-reference/aggregate-functions/reference/mannwhitneyutest
			// mannWhitneyUTest('greater') of (10, 11, 12) against (1, 2, 3)
			// with the default continuity correction: (9, 0.04042779918503192).
			// ClickHouse's normal CDF differs from Go's erfc in the 14th digit.
			name: "ClickHouse greater", x: []float64{10, 11, 12}, y: []float64{1, 2, 3},
			wantU: 9, published: 0.04042779918503192, sides: 1, tol: 1e-13,
		},
		{
			// https://cran.r-project.org/doc/manuals/r-release/R-intro.html#One_002d-and-two_002dsample-tests
			// wilcox.test(A, B): "Wilcoxon rank sum test with continuity
			// correction", W = 89, p-value = 0.007497 (ties: normal approximation).
			name: "R-intro heat of fusion, ties", x: heatA, y: heatB,
			wantU: 89, published: 0.007497, sides: 2, tol: 0.5e-6,
		},
		{
			// https://endmemo.com/r/wilcoxon.php: wilcox.test(x, y) with
			// ties, W = 51.5, p-value = 0.5966; W is below its mean 60,
			// so the larger U is y's: 120 − 51.5.
			name: "endmemo x y, ties", x: endY, y: endX,
			wantU: 68.5, published: 0.5966, sides: 2, tol: 0.5e-4,
		},
		{
			// Same page: wilcox.test(x, y) with the second y, W = 0,
			// p-value = 0.001364.
			name: "endmemo complete separation, ties", x: endY2, y: endX,
			wantU: 60, published: 0.001364, sides: 2, tol: 0.5e-6,
		},
		{
			// https://support.nag.com/numeric/fl/nagdoc_cl26.2/examples/baseresults/g08amce.r.html
			// Test statistic 86 (U of group 1), normal statistic −2.8039,
			// approximate (one-sided lower) tail probability 0.0025: the
			// upper tail of group 2, whose U is 16·23 − 86.
			name: "NAG g08amc, ties", x: nag2, y: nag1,
			wantU: 16*23 - 86, published: 0.0025, sides: 1, tol: 0.5e-4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := MannWhitneyGreater(tt.x, tt.y)
			if u != tt.wantU {
				t.Errorf("U = %v, want %v", u, tt.wantU)
			}
			if got := tt.sides * p; math.Abs(got-tt.published) > tt.tol {
				t.Errorf("p = %.17g (×%v = %.17g), published %v ± %v", p, tt.sides, got, tt.published, tt.tol)
			}
		})
	}
}

// Published values without the continuity correction check the variance
// (and its tie correction) on its own: the half unit would otherwise hide
// an error of the same size in the standard deviation.
func TestMannWhitneyVariancePublished(t *testing.T) {
	// Hollander & Wolfe (1973) p. 69: permeability of the chorioamnion,
	// the two-sample example of R's ?wilcox.test.
	hwX := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	hwY := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	tests := []struct {
		name      string
		x, y      []float64
		published float64 // upper tail of U of x, or two-sided when sides is 2
		sides     float64
		tol       float64
	}{
		{
			// https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.mannwhitneyu.html
			// mannwhitneyu(males, females, use_continuity=False,
			// method="asymptotic") prints 0.0864107329737.
			name: "scipy males females uncorrected",
			x:    []float64{19, 22, 16, 29, 24}, y: []float64{20, 11, 17, 12},
			published: 0.0864107329737, sides: 2, tol: 0.5e-13,
		},
		{
			// https://docs.rs/crate/basic_stats/latest/source/R/Wilcoxon.txt
			// wilcox.test(a, b, exact=FALSE, correct=FALSE,
			// alternative='greater'): W = 35, p-value = 0.1103.
			name: "R Hollander-Wolfe greater uncorrected", x: hwX, y: hwY,
			published: 0.1103, sides: 1, tol: 0.5e-4,
		},
		{
			// Same page, alternative='two.sided': p-value = 0.2207.
			name: "R Hollander-Wolfe two-sided uncorrected", x: hwX, y: hwY,
			published: 0.2207, sides: 2, tol: 0.5e-4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, sd, mean := mannWhitneyU(tt.x, tt.y)
			p := distuv.UnitNormal.CDF(-(u - mean) / sd)
			if got := tt.sides * p; math.Abs(got-tt.published) > tt.tol {
				t.Errorf("uncorrected p = %.17g (×%v = %.17g), published %v ± %v", p, tt.sides, got, tt.published, tt.tol)
			}
		})
	}
}

func TestMannWhitneyGreaterU(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name  string
		x, y  []float64
		wantU float64
		wantP float64 // checked only when not NaN
	}{
		{name: "x above y", x: []float64{3, 4}, y: []float64{1, 2}, wantU: 4, wantP: nan},
		{name: "x below y", x: []float64{1, 2}, y: []float64{3, 4}, wantU: 0, wantP: nan},
		{name: "interleaved", x: []float64{1, 3}, y: []float64{2}, wantU: 1, wantP: nan},
		{name: "ties count one half", x: []float64{2, 2}, y: []float64{2, 5}, wantU: 1, wantP: nan},
		{name: "mixed ties", x: []float64{1, 2, 3}, y: []float64{2, 2}, wantU: 0 + 1 + 2, wantP: nan},
		{name: "order does not matter", x: []float64{3, 1, 2}, y: []float64{2, 2}, wantU: 3, wantP: nan},
		{name: "non-finite values dropped", x: []float64{3, nan, 4}, y: []float64{1, inf, 2, -inf}, wantU: 4, wantP: nan},
		{name: "empty x", x: nil, y: []float64{1, 2}, wantU: 0, wantP: 1},
		{name: "empty y", x: []float64{1, 2}, y: nil, wantU: 0, wantP: 1},
		{name: "only NaN", x: []float64{nan}, y: []float64{1}, wantU: 0, wantP: 1},
		{name: "all values equal", x: []float64{7, 7, 7}, y: []float64{7, 7}, wantU: 3, wantP: 1},
		{name: "all zero", x: []float64{0, 0, 0, 0}, y: []float64{0, 0, 0, 0}, wantU: 8, wantP: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := MannWhitneyGreater(tt.x, tt.y)
			if u != tt.wantU {
				t.Errorf("U = %v, want %v", u, tt.wantU)
			}
			if math.IsNaN(p) || p < 0 || p > 1 {
				t.Errorf("p = %v, want a probability", p)
			}
			if !math.IsNaN(tt.wantP) && p != tt.wantP {
				t.Errorf("p = %v, want %v", p, tt.wantP)
			}
		})
	}
}

// U from ranks must equal U from counting pairs, on small samples with
// many ties, and the two one-sided tests must mirror each other.
func TestMannWhitneyGreaterCountsPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		x := make([]float64, 1+rng.IntN(8))
		y := make([]float64, 1+rng.IntN(8))
		for j := range x {
			x[j] = float64(rng.IntN(4)) // four values: ties everywhere
		}
		for j := range y {
			y[j] = float64(rng.IntN(4))
		}
		var want float64
		for _, a := range x {
			for _, b := range y {
				switch {
				case a > b:
					want++
				case a == b:
					want += 0.5
				}
			}
		}
		u, p := MannWhitneyGreater(x, y)
		uy, py := MannWhitneyGreater(y, x)
		if u != want {
			t.Fatalf("case %d: U(%v, %v) = %v, counted %v", i, x, y, u, want)
		}
		if n := float64(len(x) * len(y)); u+uy != n {
			t.Fatalf("case %d: U(x, y) + U(y, x) = %v, want n·m = %v", i, u+uy, n)
		}
		if p < 0 || p > 1 || py < 0 || py > 1 || (p < 0.5 && py < 0.5) {
			t.Fatalf("case %d: one-sided p-values %v and %v", i, p, py)
		}
	}
}
