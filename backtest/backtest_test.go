package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/backtest"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// sample is one series' value at one time of a fake answer.
type sample struct {
	labels model.Metric
	v      float64
}

// fake answers range queries from a function of the query and the time,
// and records the ranges it was asked.
type fake struct {
	fn  func(query string, t time.Time) []sample
	err error

	mu     sync.Mutex
	ranges []evaluator.Range
}

func (f *fake) QueryRange(ctx context.Context, q string, r evaluator.Range) (model.Value, error) {
	f.mu.Lock()
	f.ranges = append(f.ranges, r)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	streams := map[model.Fingerprint]*model.SampleStream{}
	var m model.Matrix
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		for _, s := range f.fn(q, t) {
			fp := s.labels.Fingerprint()
			ss, ok := streams[fp]
			if !ok {
				ss = &model.SampleStream{Metric: s.labels}
				streams[fp] = ss
				m = append(m, ss)
			}
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(s.v)})
		}
	}
	return m, nil
}

var (
	from     = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	to       = from.Add(12 * time.Hour)
	incident = from.Add(3 * time.Hour) // 30 minutes of 100 % errors from here
	windowRE = regexp.MustCompile(`\[(\w+)\]`)
)

// errorMinutes is how many minutes of errors happened up to t.
func errorMinutes(t time.Time) float64 {
	return math.Max(0, math.Min(30, t.Sub(incident).Minutes()))
}

// sloFake answers the SLO's window queries with the error ratio of a
// service that fails completely for 30 minutes and never otherwise, with
// even traffic; gap says which times have no data.
func sloFake(gap func(time.Time) bool) func(string, time.Time) []sample {
	return func(q string, t time.Time) []sample {
		m := windowRE.FindStringSubmatch(q)
		if m == nil || (gap != nil && gap(t)) {
			return nil
		}
		d, err := model.ParseDuration(m[1])
		if err != nil {
			panic(err)
		}
		w := time.Duration(d)
		return []sample{{v: (errorMinutes(t) - errorMinutes(t.Add(-w))) / w.Minutes()}}
	}
}

func shopSLO() *slo.SLO {
	return &slo.SLO{
		Name: "shop", Service: "shop", Objective: 99.9, Window: 30 * 24 * time.Hour,
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(requests_total{code="500"}[{{.window}}]))`,
			Total:  `sum(rate(requests_total[{{.window}}]))`,
		}},
		Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
	}
}

type interval struct{ fired, resolved time.Duration } // after the incident's start; resolved < 0: still firing

// TestAlerts replays the burn-rate alerts of a 30-minute outage: the page
// fires at the first step with errors in both windows and resolves once
// the 30m window of the 6h tier is clean again; the ticket holds until the
// 6h window of its slow tier is clean.
func TestAlerts(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(o *slo.SLO)
		gap       func(time.Time) bool
		maxPoints int
		want      map[slo.Severity]interval
	}{
		{
			name: "both tiers",
			want: map[slo.Severity]interval{slo.SeverityPage: {5 * time.Minute, time.Hour}, slo.SeverityTicket: {5 * time.Minute, 6*time.Hour + 30*time.Minute}},
		},
		{
			name:      "split into range queries of 50 points",
			maxPoints: 50,
			want:      map[slo.Severity]interval{slo.SeverityPage: {5 * time.Minute, time.Hour}, slo.SeverityTicket: {5 * time.Minute, 6*time.Hour + 30*time.Minute}},
		},
		{
			// Sloth AlertWindows: page windows of 30m/5m and 1h/10m
			// resolve 10 minutes after the outage instead of 30.
			name: "custom alert windows",
			edit: func(o *slo.SLO) {
				o.Alerting.Tiers = append([]slo.BurnTier{
					{Severity: slo.SeverityPage, Long: 30 * time.Minute, Short: 5 * time.Minute, Factor: 1},
					{Severity: slo.SeverityPage, Long: time.Hour, Short: 10 * time.Minute, Factor: 1},
				}, slo.BurnTiers(o.Window)[2:]...)
			},
			want: map[slo.Severity]interval{slo.SeverityPage: {5 * time.Minute, 40 * time.Minute}, slo.SeverityTicket: {5 * time.Minute, 6*time.Hour + 30*time.Minute}},
		},
		{
			name: "ticket disabled",
			edit: func(o *slo.SLO) { o.Alerting.Ticket.Enabled = false },
			want: map[slo.Severity]interval{slo.SeverityPage: {5 * time.Minute, time.Hour}},
		},
		{
			name: "alerting disabled",
			edit: func(o *slo.SLO) { o.Alerting.Enabled = false },
			want: map[slo.Severity]interval{},
		},
		{
			// A hole while firing keeps the alert: it resolves after
			// the hole, when the data says so.
			name: "scrape gap while firing",
			gap:  func(t time.Time) bool { d := t.Sub(incident); return d >= 50*time.Minute && d <= 80*time.Minute },
			want: map[slo.Severity]interval{slo.SeverityPage: {5 * time.Minute, 85 * time.Minute}, slo.SeverityTicket: {5 * time.Minute, 6*time.Hour + 30*time.Minute}},
		},
		{
			name: "still firing at the end",
			edit: func(o *slo.SLO) { o.Alerting.Page.Enabled = false },
			gap:  func(t time.Time) bool { return t.Sub(incident) > 2*time.Hour },
			want: map[slo.Severity]interval{slo.SeverityTicket: {5 * time.Minute, -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := shopSLO()
			if tt.edit != nil {
				tt.edit(o)
			}
			f := &fake{fn: sloFake(tt.gap)}
			rep, err := backtest.Run(context.Background(), &slo.Set{SLOs: []*slo.SLO{o}}, backtest.Options{Querier: f, From: from, To: to, MaxPoints: tt.maxPoints})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.SLOs) != 1 {
				t.Fatalf("%d SLO reports", len(rep.SLOs))
			}
			got := map[slo.Severity]interval{}
			for _, a := range rep.SLOs[0].Alerts {
				if _, dup := got[a.Severity]; dup {
					t.Errorf("%s fired twice: %+v", a.Severity, rep.SLOs[0].Alerts)
				}
				iv := interval{fired: a.FiredAt.Sub(incident), resolved: -1}
				if a.ResolvedAt != nil {
					iv.resolved = a.ResolvedAt.Sub(incident)
				}
				got[a.Severity] = iv
			}
			if len(got) != len(tt.want) {
				t.Errorf("alerts %+v, want %+v", got, tt.want)
			}
			for sev, want := range tt.want {
				if got[sev] != want {
					t.Errorf("%s: fired %s resolved %s after the incident, want %s and %s", sev, got[sev].fired, got[sev].resolved, want.fired, want.resolved)
				}
			}
			// 30 minutes of errors in 30 days spend 69.4 % of a 0.1 % budget.
			if b, want := float64(rep.SLOs[0].BudgetRemainingAtEnd), 1-30.0/43200/0.001; tt.gap == nil && math.Abs(b-want) > 1e-9 {
				t.Errorf("budget remaining at the end %g, want %g", b, want)
			}
			if tt.maxPoints > 0 {
				checkChunks(t, f.ranges, tt.maxPoints)
			}
		})
	}
}

// checkChunks wants every range query within maxPoints points, and the
// queries of each series to cover the backtest without gaps or overlaps.
func checkChunks(t *testing.T, ranges []evaluator.Range, maxPoints int) {
	t.Helper()
	steps := int(to.Sub(from)/backtest.DefaultStep) + 1
	covered := 0
	for _, r := range ranges {
		n := int(r.End.Sub(r.Start)/r.Step) + 1
		if n > maxPoints {
			t.Errorf("range %s..%s asks %d points, more than %d", r.Start, r.End, n, maxPoints)
		}
		covered += n
	}
	queries := 8 // the SLO window and the 7 distinct windows of the tiers
	if covered != queries*steps {
		t.Errorf("range queries cover %d points, want %d series × %d steps", covered, queries, steps)
	}
}

// probeFake answers the probe query "probe" with scripted values by step
// (NaN: a NaN point; missing: no point), and the SLO's windows like
// sloFake.
const missing = -1

func probeFake(values map[string][]float64) func(string, time.Time) []sample {
	slo := sloFake(nil)
	return func(q string, t time.Time) []sample {
		k := int(t.Sub(from) / backtest.DefaultStep)
		var out []sample
		for name, vs := range values {
			if !strings.HasPrefix(q, "probe") {
				continue
			}
			v := vs[len(vs)-1]
			if k < len(vs) {
				v = vs[k]
			}
			if v == missing {
				continue
			}
			out = append(out, sample{labels: model.Metric{"pod": model.LabelValue(name)}, v: v})
		}
		if strings.HasPrefix(q, "probe") {
			return out
		}
		return slo(q, t)
	}
}

func steady(edit func(h *slo.Hypothesis)) *slo.Hypothesis {
	h := &slo.Hypothesis{
		Name: "steady", FailAfter: 2, PassAfter: 2, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
		Probes: []*slo.Probe{{Name: "error-rate", Query: "probe", Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.01}}},
	}
	if edit != nil {
		edit(h)
	}
	return h
}

type change struct {
	step     int
	from, to slo.Verdict
	reason   string
}

func TestHypotheses(t *testing.T) {
	nan := math.NaN()
	ok, bad := 0.001, 0.05
	script := []float64{ok, ok, ok, bad, bad, bad, ok, ok, ok, nan, missing, ok, ok, ok}
	tests := []struct {
		name   string
		hyp    *slo.Hypothesis
		values map[string][]float64
		want   []change
	}{
		{
			name:   "debounced with failAfter and passAfter; NaN and no data are unknown",
			hyp:    steady(nil),
			values: map[string][]float64{"a": script},
			want: []change{
				{1, "unknown", "pass", `error-rate = 0.001 < 0.01`},
				{4, "pass", "fail", `error-rate = 0.05 not < 0.01`},
				{7, "fail", "pass", `error-rate = 0.001 < 0.01`},
				{9, "pass", "unknown", `error-rate: NaN`},
				{12, "unknown", "pass", `error-rate = 0.001 < 0.01`},
			},
		},
		{
			name:   "onNoData pass, failAfter 1",
			hyp:    steady(func(h *slo.Hypothesis) { h.OnNoData = slo.PolicyPass; h.FailAfter = 1 }),
			values: map[string][]float64{"a": script},
			want: []change{
				{1, "unknown", "pass", `error-rate = 0.001 < 0.01`},
				{3, "pass", "fail", `error-rate = 0.05 not < 0.01`},
				{7, "fail", "pass", `error-rate = 0.001 < 0.01`},
			},
		},
		{
			name:   "several series, all must hold",
			hyp:    steady(nil),
			values: map[string][]float64{"a": {ok}, "b": {ok, ok, bad, bad, ok}},
			want: []change{
				{1, "unknown", "pass", `error-rate{pod="a"} = 0.001 < 0.01 (2 series)`},
				{3, "pass", "fail", `error-rate{pod="b"} = 0.05 not < 0.01`},
				{5, "fail", "pass", `error-rate{pod="a"} = 0.001 < 0.01 (2 series)`},
			},
		},
		{
			name:   "several series, any may hold",
			hyp:    steady(func(h *slo.Hypothesis) { h.Series = slo.SeriesAny }),
			values: map[string][]float64{"a": {ok}, "b": {ok, ok, bad, bad, ok}},
			want:   []change{{1, "unknown", "pass", `error-rate{pod="a"} = 0.001 < 0.01`}},
		},
		{
			// The outage (steps 36 to 42) burns 1000×: the 1h burn rate
			// is over 6 from the first step with errors until the hour
			// after the outage is clean.
			name: "SLO probe on the burn rate",
			hyp: &slo.Hypothesis{Name: "budget", FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, Series: slo.SeriesAll,
				Probes: []*slo.Probe{{Name: "burn", SLO: "shop", BurnRate: &slo.BurnRateTolerance{Window: time.Hour, Below: 6}}}},
			want: []change{
				{0, "unknown", "pass", `burn: burn rate over 1h = 0 < 6`},
				{37, "pass", "fail", `burn: burn rate over 1h = 83.33 not < 6`},
				{54, "fail", "pass", `burn: burn rate over 1h = 0 < 6`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := &slo.Set{SLOs: []*slo.SLO{shopSLO()}, Hypotheses: []*slo.Hypothesis{tt.hyp}}
			f := &fake{fn: probeFake(tt.values)}
			rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to})
			if err != nil {
				t.Fatal(err)
			}
			var got []change
			for _, c := range rep.Hypotheses[0].Changes {
				got = append(got, change{int(c.At.Sub(from) / backtest.DefaultStep), c.From, c.To, c.Reason})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("changes\n%+v\nwant\n%+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("change %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestQueryErrorEndsTheBacktest(t *testing.T) {
	boom := &evaluator.QueryError{Reason: evaluator.ReasonUnreachable, Query: "x", Err: errors.New("connection refused")}
	f := &fake{err: boom}
	_, err := backtest.Run(context.Background(), &slo.Set{SLOs: []*slo.SLO{shopSLO()}}, backtest.Options{Querier: f, From: from, To: to})
	var qe *evaluator.QueryError
	if !errors.As(err, &qe) || !strings.Contains(err.Error(), "slo shop, window 30d") {
		t.Fatalf("err %v, want the query error, saying which query", err)
	}
}

func TestBadRange(t *testing.T) {
	f := &fake{fn: sloFake(nil)}
	if _, err := backtest.Run(context.Background(), &slo.Set{}, backtest.Options{Querier: f, From: to, To: from}); err == nil {
		t.Fatal("no error for an end before the start")
	}
}

func TestProgress(t *testing.T) {
	var calls []int
	total := 0
	f := &fake{fn: sloFake(nil)}
	_, err := backtest.Run(context.Background(), &slo.Set{SLOs: []*slo.SLO{shopSLO()}}, backtest.Options{
		Querier: f, From: from, To: to, MaxPoints: 100,
		Progress: func(done, tot int, what string) { calls = append(calls, done); total = tot },
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != 16 || len(calls) != 16 || calls[len(calls)-1] != 16 {
		t.Errorf("progress calls %v of %d, want 1..16 (8 windows × 2 chunks)", calls, total)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 20, 14, 3, 7, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "now", want: now},
		{in: "-7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "now-90m", want: now.Add(-90 * time.Minute)},
		{in: "-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "2026-11-13T08:00:00Z", want: time.Date(2026, 11, 13, 8, 0, 0, 0, time.UTC)},
		{in: "2026-11-13T08:00:00+02:00", want: time.Date(2026, 11, 13, 6, 0, 0, 0, time.UTC)},
		{in: "2026-11-13", want: time.Date(2026, 11, 13, 0, 0, 0, 0, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "-7x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := backtest.ParseTime(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !got.Equal(tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	set := &slo.Set{SLOs: []*slo.SLO{shopSLO()}, Hypotheses: []*slo.Hypothesis{steady(nil)}}
	f := &fake{fn: probeFake(map[string][]float64{"a": {0.001, 0.001, 0.001, 0.031, 0.031, 0.001}})}
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := backtest.WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SLO shop (shop): budget remaining at the end 30.6%",
		"page   fired 2026-11-20T03:05:00Z  resolved 2026-11-20T04:00:00Z (after 55m): burn rate 83.33 over 1h and 1000 over 5m > 14.4",
		"2026-11-20T00:20:00Z  steady  pass → fail (error-rate = 0.031 not < 0.01)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	var js bytes.Buffer
	if err := backtest.WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var shape struct {
		SLOs []struct {
			Name                 string   `json:"name"`
			BudgetRemainingAtEnd *float64 `json:"budgetRemainingAtEnd"`
			Alerts               []struct {
				Severity   string     `json:"severity"`
				FiredAt    time.Time  `json:"firedAt"`
				ResolvedAt *time.Time `json:"resolvedAt"`
			} `json:"alerts"`
		} `json:"slos"`
		Hypotheses []struct {
			Name    string `json:"name"`
			Changes []struct {
				At     time.Time `json:"at"`
				From   string    `json:"from"`
				To     string    `json:"to"`
				Reason string    `json:"reason"`
			} `json:"changes"`
		} `json:"hypotheses"`
	}
	if err := json.Unmarshal(js.Bytes(), &shape); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if len(shape.SLOs) != 1 || shape.SLOs[0].BudgetRemainingAtEnd == nil || len(shape.SLOs[0].Alerts) != 2 ||
		shape.SLOs[0].Alerts[0].Severity != "page" || shape.SLOs[0].Alerts[0].ResolvedAt == nil {
		t.Errorf("JSON SLOs: %s", js.String())
	}
	if len(shape.Hypotheses) != 1 || len(shape.Hypotheses[0].Changes) != 3 || shape.Hypotheses[0].Changes[1].To != "fail" {
		t.Errorf("JSON hypotheses: %s", js.String())
	}
}
