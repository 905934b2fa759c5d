package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestValidate(t *testing.T) {
	valid := Test{Confidence: 0.95, MinEffect: 0.1, MinSamples: 5}
	tests := []struct {
		name    string
		modify  func(*Test)
		wantErr string // substring; "" for valid
	}{
		{name: "valid increase", modify: func(*Test) {}},
		{name: "valid decrease", modify: func(t *Test) { t.Worse = Decrease; t.MinEffect = 0.5 }},
		{name: "confidence 0.5", modify: func(t *Test) { t.Confidence = 0.5 }},
		{name: "minSamples 3", modify: func(t *Test) { t.MinSamples = 3 }},
		{name: "large minEffect when higher is worse", modify: func(t *Test) { t.MinEffect = 3 }},
		{name: "confidence 1", modify: func(t *Test) { t.Confidence = 1 }, wantErr: "confidence"},
		{name: "confidence below 0.5", modify: func(t *Test) { t.Confidence = 0.4 }, wantErr: "confidence"},
		{name: "confidence NaN", modify: func(t *Test) { t.Confidence = math.NaN() }, wantErr: "confidence"},
		{name: "confidence as a percentage", modify: func(t *Test) { t.Confidence = 95 }, wantErr: "confidence"},
		{name: "minEffect 0", modify: func(t *Test) { t.MinEffect = 0 }, wantErr: "minEffect"},
		{name: "minEffect negative", modify: func(t *Test) { t.MinEffect = -0.1 }, wantErr: "minEffect"},
		{name: "minEffect NaN", modify: func(t *Test) { t.MinEffect = math.NaN() }, wantErr: "minEffect"},
		{name: "minEffect Inf", modify: func(t *Test) { t.MinEffect = math.Inf(1) }, wantErr: "minEffect"},
		{name: "minEffect 1 when lower is worse", modify: func(t *Test) { t.Worse = Decrease; t.MinEffect = 1 }, wantErr: "minEffect"},
		{name: "minSamples 2", modify: func(t *Test) { t.MinSamples = 2 }, wantErr: "minSamples"},
		{name: "unknown direction", modify: func(t *Test) { t.Worse = 7 }, wantErr: "worse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			test := valid
			tt.modify(&test)
			err := test.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

// sliceRatios draws n per-slice error ratios of a service that fails a
// fraction p of the requests it serves, requests per slice.
func sliceRatios(rng *rand.Rand, n int, p, requests float64) []float64 {
	errs := distuv.Binomial{N: requests, P: p, Src: rng}
	out := make([]float64, n)
	for i := range out {
		out[i] = errs.Rand() / requests
	}
	return out
}

// series is n evenly spaced values from lo, step apart: hand-checkable
// groups with no randomness.
func series(n int, lo, step float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + float64(i)*step
	}
	return out
}

func scaled(xs []float64, f float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * f
	}
	return out
}

func TestDecide(t *testing.T) {
	higherWorse := Test{Confidence: 0.95, MinEffect: 0.2, MinSamples: 5}
	lowerWorse := Test{Confidence: 0.95, MinEffect: 0.2, MinSamples: 5, Worse: Decrease}
	nan, inf := math.NaN(), math.Inf(1)

	// Error ratios around 0.8 %, 1000 requests a slice, both groups from
	// one distribution (a fixed seed, so the same samples every run).
	rng := rand.New(rand.NewPCG(7, 8))
	same1, same2 := sliceRatios(rng, 60, 0.008, 1000), sliceRatios(rng, 60, 0.008, 1000)
	latency := series(20, 100, 5)      // ms, 100 … 195
	throughput := series(20, 1000, 10) // requests/s, 1000 … 1190

	tests := []struct {
		name                string
		test                Test
		control, experiment []float64
		look                int
		want                Decision
		wantCounts          [2]int
	}{
		{
			name: "clearly worse experiment fails", test: higherWorse,
			control: latency, experiment: scaled(latency, 2),
			want: Fail, wantCounts: [2]int{20, 20},
		},
		{
			name: "error ratio doubled fails", test: higherWorse,
			control: same1, experiment: sliceRatios(rng, 60, 0.016, 1000),
			want: Fail, wantCounts: [2]int{60, 60},
		},
		{
			name: "same distribution, enough samples, passes", test: higherWorse,
			control: same1, experiment: same2,
			want: Pass, wantCounts: [2]int{60, 60},
		},
		{
			name: "identical samples pass", test: higherWorse,
			control: latency, experiment: latency,
			want: Pass, wantCounts: [2]int{20, 20},
		},
		{
			name: "worse by less than minEffect passes", test: higherWorse,
			control: latency, experiment: scaled(latency, 1.05),
			want: Pass, wantCounts: [2]int{20, 20},
		},
		{
			name: "worse by about minEffect is inconclusive", test: higherWorse,
			control: latency, experiment: scaled(latency, 1.2),
			want: Inconclusive, wantCounts: [2]int{20, 20},
		},
		{
			name: "few samples are inconclusive, not a pass", test: higherWorse,
			control: same1[:5], experiment: same2[:5],
			want: Inconclusive, wantCounts: [2]int{5, 5},
		},
		{
			name: "fewer than minSamples in experiment", test: higherWorse,
			control: latency, experiment: latency[:4],
			want: TooFew, wantCounts: [2]int{20, 4},
		},
		{
			name: "fewer than minSamples in control", test: higherWorse,
			control: latency[:4], experiment: scaled(latency, 10),
			want: TooFew, wantCounts: [2]int{4, 20},
		},
		{
			name: "no samples", test: higherWorse,
			want: TooFew, wantCounts: [2]int{0, 0},
		},
		{
			name: "NaN and Inf dropped before counting", test: higherWorse,
			control:    []float64{100, nan, 110, inf, 120, 130, -inf},
			experiment: []float64{300, 310, 320, 330, 340},
			want:       TooFew, wantCounts: [2]int{4, 5},
		},
		{
			name: "NaN dropped, the rest decides", test: higherWorse,
			control:    append([]float64{nan, nan, nan}, latency...),
			experiment: append(scaled(latency, 2), nan),
			want:       Fail, wantCounts: [2]int{20, 20},
		},
		{
			name: "lower is worse: throughput halved fails", test: lowerWorse,
			control: throughput, experiment: scaled(throughput, 0.5),
			want: Fail, wantCounts: [2]int{20, 20},
		},
		{
			name: "lower is worse: unchanged throughput passes", test: lowerWorse,
			control: throughput, experiment: throughput,
			want: Pass, wantCounts: [2]int{20, 20},
		},
		{
			name: "lower is worse: doubled throughput passes", test: lowerWorse,
			control: throughput, experiment: scaled(throughput, 2),
			want: Pass, wantCounts: [2]int{20, 20},
		},
		{
			name: "lower is worse: doubled latency would pass", test: lowerWorse,
			control: latency, experiment: scaled(latency, 2),
			want: Pass, wantCounts: [2]int{20, 20},
		},
		{
			name: "lower is worse: down by about minEffect is inconclusive", test: lowerWorse,
			control: throughput, experiment: scaled(throughput, 0.8),
			want: Inconclusive, wantCounts: [2]int{20, 20},
		},
		{
			name: "a late look needs more evidence", test: higherWorse,
			control: latency[:6], experiment: scaled(latency[:6], 3),
			look: 1, want: Fail, wantCounts: [2]int{6, 6},
		},
		{
			name: "the same evidence at look 10 is not enough", test: higherWorse,
			control: latency[:6], experiment: scaled(latency[:6], 3),
			look: 10, want: Inconclusive, wantCounts: [2]int{6, 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.test.Validate(); err != nil {
				t.Fatal(err)
			}
			r := tt.test.Decide(tt.control, tt.experiment, tt.look)
			if r.Decision != tt.want {
				t.Errorf("Decision = %s, want %s (pFail %.3g, pPass %.3g, alpha %.3g)", r.Decision, tt.want, r.PFail, r.PPass, r.Alpha)
			}
			if got := [2]int{r.Control, r.Experiment}; got != tt.wantCounts {
				t.Errorf("counts (control, experiment) = %v, want %v", got, tt.wantCounts)
			}
			if tooFew := r.Decision == TooFew; tooFew != (math.IsNaN(r.PFail) && math.IsNaN(r.PPass)) {
				t.Errorf("p-values %v and %v with decision %s: NaN exactly when TooFew", r.PFail, r.PPass, r.Decision)
			}
		})
	}
}

func TestDecideAlphaPerLook(t *testing.T) {
	test := Test{Confidence: 0.95, MinEffect: 0.1, MinSamples: 3}
	tests := []struct {
		name string
		look int
		want float64
	}{
		{name: "single test", look: 0, want: 0.05},
		{name: "negative look is a single test", look: -3, want: 0.05},
		{name: "first look", look: 1, want: 0.05 / 2},
		{name: "second look", look: 2, want: 0.05 / 6},
		{name: "tenth look", look: 10, want: 0.05 / 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The level is reported with too few samples as well.
			for _, n := range []int{1, 10} {
				r := test.Decide(series(n, 1, 1), series(n, 1, 1), tt.look)
				if math.Abs(r.Alpha-tt.want) > 1e-15 {
					t.Errorf("%d samples: Alpha = %v, want %v", n, r.Alpha, tt.want)
				}
			}
		})
	}

	// The spending adds up to alpha over any number of looks.
	var sum float64
	for k := 1; k <= 100000; k++ {
		sum += test.level(k)
	}
	if sum > 0.05 || sum < 0.05*(1-1e-4) {
		t.Errorf("levels of 100000 looks add up to %v, want just under 0.05", sum)
	}
}

func TestDecideMediansAndPValues(t *testing.T) {
	test := Test{Confidence: 0.95, MinEffect: 0.1, MinSamples: 3}
	control := []float64{4, 1, 3, 2, math.NaN()}
	experiment := []float64{10, 30, 20}
	r := test.Decide(control, experiment, 0)
	if r.ControlMedian != 2.5 || r.ExperimentMedian != 20 {
		t.Errorf("medians = %v, %v, want 2.5, 20", r.ControlMedian, r.ExperimentMedian)
	}
	// The fail test is MannWhitneyGreater(experiment, control × 1.1).
	_, want := MannWhitneyGreater(experiment, scaled([]float64{4, 1, 3, 2}, 1.1))
	if math.Abs(r.PFail-want) > 1e-15 {
		t.Errorf("PFail = %v, want %v", r.PFail, want)
	}
	_, want = MannWhitneyGreater(scaled([]float64{4, 1, 3, 2}, 1.1), experiment)
	if math.Abs(r.PPass-want) > 1e-15 {
		t.Errorf("PPass = %v, want %v", r.PPass, want)
	}

	// Decide works on copies: the caller's samples keep their order.
	kept := []float64{4, 1, 3, 2}
	test.Decide(kept, kept, 0)
	if !slices.Equal(kept, []float64{4, 1, 3, 2}) {
		t.Errorf("Decide changed its input to %v", kept)
	}

	empty := test.Decide(nil, []float64{math.NaN()}, 1)
	if !math.IsNaN(empty.ControlMedian) || !math.IsNaN(empty.ExperimentMedian) {
		t.Errorf("medians of empty groups = %v, %v, want NaN", empty.ControlMedian, empty.ExperimentMedian)
	}
}
