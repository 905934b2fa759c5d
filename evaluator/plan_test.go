package evaluator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// flatQuerier answers every query with one series of value 1, and every
// range query with a point per step: enough to fill buffers.
type flatQuerier struct{}

func (flatQuerier) Query(_ context.Context, _ string, ts time.Time) (model.Value, error) {
	return model.Vector{{Metric: model.Metric{}, Value: 1, Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (flatQuerier) QueryRange(_ context.Context, _ string, r Range) (model.Value, error) {
	s := &model.SampleStream{Metric: model.Metric{}}
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: 1})
	}
	return model.Matrix{s}, nil
}

func ratioSLO(name, errors, total string) *slo.SLO {
	return &slo.SLO{
		Name: name, Service: name, Objective: 99.9, Window: 30 * 24 * time.Hour,
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{Errors: errors, Total: total}},
	}
}

func jobSLO(job string) *slo.SLO {
	return ratioSLO(job,
		fmt.Sprintf(`sum(rate(http_requests_total{job=%q,code=~"5.."}[{{.window}}]))`, job),
		fmt.Sprintf(`sum(rate(http_requests_total{job=%q}[{{.window}}]))`, job))
}

// backfilled returns an evaluator that has evaluated set once at at.
func backfilled(t *testing.T, set *slo.Set, at time.Time, opts Options) *Evaluator {
	t.Helper()
	opts.Querier, opts.Interval, opts.Now = flatQuerier{}, 30*time.Second, func() time.Time { return at }
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	e.Evaluate(context.Background(), at)
	for _, s := range e.Snapshot().SLOs() {
		if !s.Fresh || s.Error != "" {
			t.Fatalf("%s not backfilled: %+v", s.Name, s)
		}
	}
	return e
}

var planAt = time.Date(2026, 3, 1, 10, 17, 30, 0, time.UTC)

func TestPlanSteadyStateGroupsSLOsThatDifferInLabels(t *testing.T) {
	set := &slo.Set{SLOs: []*slo.SLO{jobSLO("a"), jobSLO("b"), jobSLO("c")}}
	e := backfilled(t, set, planAt, Options{})
	next := planAt.Add(30 * time.Second)
	p := e.plan(e.snap.Load(), next)

	want := `group sum by (job) (rate(http_requests_total{code=~"5..",job=~"a|b|c"}[2m])) answers 3
group sum by (job) (rate(http_requests_total{job=~"a|b|c"}[2m])) answers 3
`
	if got := p.String(); got != want {
		t.Fatalf("steady-state plan:\n%s\nwant:\n%s", got, want)
	}
	for name, reqs := range p.slos {
		if len(reqs) != 1 || !reqs[0].req.instant() || !reqs[0].req.end(reqs[0].req.first).Equal(next) {
			t.Errorf("%s needs %+v, want the newest slice only", name, reqs)
		}
	}
}

func TestPlanAsksEachQueryOnce(t *testing.T) {
	total := `sum(rate(http_requests_total[{{.window}}]))`
	set := &slo.Set{SLOs: []*slo.SLO{
		ratioSLO("errors-5xx", `sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))`, total),
		ratioSLO("errors-429", `sum(rate(http_requests_total{code="429"}[{{.window}}]))`, total),
	}}
	e := backfilled(t, set, planAt, Options{DisableBatching: true})
	p := e.plan(e.snap.Load(), planAt.Add(30*time.Second))
	var lines []string
	for _, q := range p.queries {
		lines = append(lines, q.String())
	}
	if len(p.queries) != 3 {
		t.Fatalf("want the shared total once and each errors query once, got %d queries:\n%s", len(p.queries), strings.Join(lines, "\n"))
	}
	if a, b := p.slos["errors-5xx"][0].queries[2], p.slos["errors-429"][0].queries[2]; a != b {
		t.Fatalf("the shared total query is planned twice: %s and %s", a, b)
	}
}

func TestPlanBackfill(t *testing.T) {
	o := jobSLO("a")
	tr, err := newSLOTracker(o, 30*time.Second, DefaultMinRange)
	if err != nil {
		t.Fatal(err)
	}
	reqs := tr.needs(planAt)
	var fine, coarse, tails int
	for _, r := range reqs {
		if !r.instant() && r.last-r.first+1 > maxPoints {
			t.Errorf("request of %d slices, more than %d points", r.last-r.first+1, maxPoints)
		}
		switch r.ring.kind {
		case fineRing:
			fine += int(r.last - r.first + 1)
		case coarseRing:
			coarse += int(r.last - r.first + 1)
			// Hours inside the fine ring are rolled up, not asked.
			if firstFine := tr.fine.sliceOf(planAt.Add(-fineSpan - coarseStep)); (r.last-1)*int64(coarseStep/tr.fine.step)+1 >= firstFine {
				t.Errorf("coarse hour %d is asked although the fine slices cover it", r.last)
			}
		case tailRing:
			tails++
		}
	}
	// 7h of 30 s slices, up to the one ending at planAt.
	if want := int(7*time.Hour/(30*time.Second)) + 1; fine != want {
		t.Errorf("%d fine slices asked at start, want %d", fine, want)
	}
	if coarse < 30*24 {
		t.Errorf("%d hours asked at start, want at least the 30-day window", coarse)
	}
	if tails != 3 {
		t.Errorf("%d start-edge requests, want one for each window over 6h (1d, 3d, 30d)", tails)
	}

	// Answering them leaves nothing to ask but the next slice.
	got := make([]fetched, len(reqs))
	ev, _ := o.Events()
	for i, r := range reqs {
		got[i].req = r
		for j, tmpl := range [4]string{ev.Bad, ev.Good, ev.Total, ev.Raw} {
			if tmpl == "" {
				continue
			}
			var v model.Value
			var qerr error
			if r.instant() {
				v, qerr = flatQuerier{}.Query(context.Background(), tmpl, r.end(r.first))
			} else {
				v, qerr = flatQuerier{}.QueryRange(context.Background(), tmpl, r.rng())
			}
			got[i].answers[j] = answer{query: tmpl, v: v, err: qerr}
		}
	}
	if err := tr.apply(planAt, got); err != nil {
		t.Fatal(err)
	}
	if c, missing := tr.windowCounts(o.Window, planAt); missing != 0 || c.Total == 0 {
		t.Fatalf("30d window after the backfill: %+v, %s missing", c, missing)
	}
	after := tr.needs(planAt.Add(30 * time.Second))
	if len(after) != 1 || after[0].ring.kind != fineRing || !after[0].instant() {
		t.Fatalf("after the backfill the next cycle needs %+v, want the newest fine slice", after)
	}
}

func TestPlanAfterAnOutageAsksTheMissedRun(t *testing.T) {
	set := &slo.Set{SLOs: []*slo.SLO{jobSLO("a")}}
	e := backfilled(t, set, planAt, Options{DisableBatching: true})
	// Ten cycles missed: one range query per template for the 11 slices.
	at := planAt.Add(11 * 30 * time.Second)
	p := e.plan(e.snap.Load(), at)
	reqs := p.slos["a"]
	if len(reqs) != 1 || reqs[0].req.instant() || reqs[0].req.last-reqs[0].req.first != 10 {
		t.Fatalf("after 10 missed cycles: %+v, want one run of 11 slices", reqs)
	}
	if len(p.queries) != 2 {
		t.Fatalf("%d queries, want a range query for errors and one for total:\n%s", len(p.queries), p)
	}
}
