package backtest

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/internal/stats"
	"github.com/slogate/slogate/slo"
)

// Relative tolerances compare a probe's value with a reference measured at
// the same step: outside a run (and a backtest has no runs) the baseline
// trails the time judged, and a test's samples are the trailing compare
// window's, as the evaluator measures them between runs.

// relativeProbe judges a probe against its trailing baseline or a control
// group with bounds (maxIncrease, maxDecrease, maxDelta) at every step.
// Either side without data (or NaN) is no data; several series on either
// side follow onError, as in the evaluator: a relative tolerance compares
// one value.
func (r *run) relativeProbe(ctx context.Context, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	rel := p.Relative
	what := fmt.Sprintf("hypothesis %s, probe %s", h.Name, p.Name)
	var value, ref []series
	var err error
	refName, bounds := "baseline", rel.String()
	if b := rel.Baseline; b != nil {
		if value, err = r.query(ctx, p.Query, what); err != nil {
			return nil, err
		}
		// The baseline of step k ends offset before it: the same grid,
		// shifted.
		ref, err = r.queryGrid(ctx, b.BaselineQuery(p.Query), what+", baseline", r.from.Add(-b.Offset), r.opts.Step, r.steps)
	} else {
		refName = "control"
		bounds = strings.TrimPrefix(bounds, "experiment "+rel.Compare.Experiment+" ")
		if value, err = r.query(ctx, rel.Compare.ExperimentQuery, what+", experiment"); err != nil {
			return nil, err
		}
		ref, err = r.query(ctx, rel.Compare.ControlQuery, what+", control")
	}
	if err != nil {
		return nil, err
	}
	noData := h.OnNoData.Verdict()
	out := make([]judgement, r.steps)
	for k := range out {
		vs, rs := presentAt(value, k), presentAt(ref, k)
		switch {
		case len(vs) > 1 || len(rs) > 1:
			out[k] = judgement{h.OnError.Verdict(), fmt.Sprintf("%s: the query returned %d series; a relative tolerance compares one value: aggregate it (sum, avg) or use a fixed tolerance",
				p.Name, max(len(vs), len(rs)))}
		case len(vs) == 0:
			out[k] = judgement{noData, p.Name + ": no data"}
		case math.IsNaN(vs[0].v[k]):
			out[k] = judgement{noData, p.Name + ": NaN"}
		case len(rs) == 0 || math.IsNaN(rs[0].v[k]):
			missing := "no control value to compare with"
			if b := rel.Baseline; b != nil {
				missing = fmt.Sprintf("no baseline: the query had no data over %s before %s", model.Duration(b.Window), stamp(r.at(k).Add(-b.Offset)))
			}
			out[k] = judgement{noData, fmt.Sprintf("%s = %s: %s", p.Name, formatValue(vs[0].v[k]), missing)}
		default:
			v, ref := vs[0].v[k], rs[0].v[k]
			j := judgement{slo.Pass, fmt.Sprintf("%s = %s, %s %s: %s", p.Name, formatValue(v), refName, formatValue(ref), bounds)}
			if !rel.Holds(v, ref) {
				j = judgement{slo.Fail, fmt.Sprintf("%s = %s, %s %s: not %s", p.Name, formatValue(v), refName, formatValue(ref), bounds)}
			}
			out[k] = j
		}
	}
	return out, nil
}

// sampleGrid is where the samples of a test come from: the points of both
// groups' queries every compare step, from the first whole step of the
// first step's trailing window to the last step.
type sampleGrid struct {
	c     *slo.CompareSpec
	start time.Time
	n     int
}

func (r *run) sampleGrid(c *slo.CompareSpec) sampleGrid {
	g := sampleGrid{c: c}
	g.start = g.lo(r.at(0))
	g.n = max(int(g.hi(r.at(r.steps-1)).Sub(g.start)/c.Step)+1, 0)
	return g
}

// lo and hi bound the samples of the window trailing at, as the evaluator
// takes them: the compare steps within [at - window, at].
func (g sampleGrid) lo(at time.Time) time.Time {
	from := at.Add(-g.c.Window)
	start := from.Truncate(g.c.Step)
	if start.Before(from) {
		start = start.Add(g.c.Step)
	}
	return start
}

func (g sampleGrid) hi(at time.Time) time.Time { return at.Truncate(g.c.Step) }

// index is the point of the grid at t (a compare step).
func (g sampleGrid) index(t time.Time) int { return int(t.Sub(g.start) / g.c.Step) }

// testProbe judges a control-vs-experiment probe with its statistical
// test at every step, on the per-step samples of both groups over the
// compare window trailing the step (one range query per group over the
// whole backtest, sliced). As in the evaluator, too few samples or too
// little evidence either way is unknown, never a pass, and a group with
// several series follows onError.
func (r *run) testProbe(ctx context.Context, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	rel := p.Relative
	c := rel.Compare
	g := r.sampleGrid(c)
	what := fmt.Sprintf("hypothesis %s, probe %s", h.Name, p.Name)
	var groups [2][]series
	if g.n > 0 {
		for i, q := range []string{c.ControlQuery, c.ExperimentQuery} {
			ss, err := r.queryGrid(ctx, q, what+", "+[]string{"control", "experiment"}[i]+" samples", g.start, c.Step, g.n)
			if err != nil {
				return nil, err
			}
			groups[i] = ss
		}
	}
	t := rel.Test
	test := stats.FromSpec(t)
	effect := strconv.FormatFloat(t.MinEffect*100, 'g', 4, 64) + "%"
	out := make([]judgement, r.steps)
	for k := range out {
		at := r.at(k)
		lo, hi := g.index(g.lo(at)), g.index(g.hi(at))
		var samples [2][]float64
		several := 0
		for i, ss := range groups {
			n := 0
			for _, s := range ss {
				vs := window(s.points, lo, hi)
				if len(vs) > 0 {
					n++
					samples[i] = vs
				}
			}
			several = max(several, n)
		}
		if several > 1 {
			out[k] = judgement{h.OnError.Verdict(), fmt.Sprintf("%s: the query returned %d series; a test compares one series per group: aggregate it (sum, avg)", p.Name, several)}
			continue
		}
		res := test.Decide(samples[0], samples[1], 0)
		medians := fmt.Sprintf("%s median = %s, control median %s", p.Name, formatValue(res.ExperimentMedian), formatValue(res.ControlMedian))
		on := fmt.Sprintf("%s on %d experiment and %d control samples", t.Method, res.Experiment, res.Control)
		switch res.Decision {
		case stats.Fail:
			out[k] = judgement{slo.Fail, fmt.Sprintf("%s: worse by %s or more (%s, p %s < %s)", medians, effect, on, formatP(res.PFail), formatP(res.Alpha))}
		case stats.Pass:
			out[k] = judgement{slo.Pass, fmt.Sprintf("%s: not worse by %s (%s, p %s < %s)", medians, effect, on, formatP(res.PPass), formatP(res.Alpha))}
		case stats.TooFew:
			out[k] = judgement{slo.Unknown, fmt.Sprintf("%s: %d control and %d experiment samples, fewer than minSamples %d", p.Name, res.Control, res.Experiment, t.MinSamples)}
		default:
			out[k] = judgement{slo.Unknown, fmt.Sprintf("%s: no difference of %s shown either way yet (p %s to fail, %s to pass, level %s)",
				medians, effect, formatP(res.PFail), formatP(res.PPass), formatP(res.Alpha))}
		}
	}
	return out, nil
}

// window are the values of p at indexes lo to hi that have a point.
func window(p points, lo, hi int) []float64 {
	var out []float64
	for i := max(lo, 0); i <= hi && i < len(p.v); i++ {
		if p.ok[i] {
			out = append(out, p.v[i])
		}
	}
	return out
}

func formatP(p float64) string { return strconv.FormatFloat(p, 'g', 3, 64) }
