package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/backtest"
	"github.com/slogate/slogate/slo"
)

// segment is a stretch of a service's traffic, in requests per hour.
type segment struct {
	from, to      time.Time
	total, errors float64
}

// traffic is a service that serves 1200 requests an hour without errors
// outside its segments.
type traffic []segment

const baseRPH = 1200

// quietNight is the scenario of the guard tests: from 02:00 to 05:00 the
// service has 5 requests an hour, and from 03:00 to 04:00 3 of them fail
// (60 %: a burn rate of 600 against 99.9 %, on 5 events an hour); from
// 08:00 to 08:30 every request fails at full traffic, a real outage.
var quietNight = traffic{
	{from.Add(2 * time.Hour), from.Add(3 * time.Hour), 5, 0},
	{from.Add(3 * time.Hour), from.Add(4 * time.Hour), 5, 3},
	{from.Add(4 * time.Hour), from.Add(5 * time.Hour), 5, 0},
	{from.Add(8 * time.Hour), from.Add(8*time.Hour + 30*time.Minute), baseRPH, baseRPH},
}

// count is how many requests (errors) the service served in (a, b].
func (tr traffic) count(a, b time.Time, errors bool) float64 {
	hours := func(d time.Duration) float64 { return d.Seconds() / 3600 }
	n := 0.0
	if !errors {
		n = baseRPH * hours(b.Sub(a))
	}
	for _, s := range tr {
		lo, hi := maxTime(a, s.from), minTime(b, s.to)
		if !hi.After(lo) {
			continue
		}
		if errors {
			n += s.errors * hours(hi.Sub(lo))
		} else {
			n += (s.total - baseRPH) * hours(hi.Sub(lo))
		}
	}
	return n
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// answer answers the SLO's queries: an error ratio over a window (the
// query divides), or the total events over one (rules.EventQueries:
// rate × seconds).
func (tr traffic) answer(q string, t time.Time) []sample {
	m := windowRE.FindStringSubmatch(q)
	if m == nil {
		return nil
	}
	d, err := model.ParseDuration(m[1])
	if err != nil {
		panic(err)
	}
	w := time.Duration(d)
	total := tr.count(t.Add(-w), t, false)
	if strings.Contains(q, " / ") {
		return []sample{{v: tr.count(t.Add(-w), t, true) / total}}
	}
	return []sample{{v: total}}
}

func guardedSLO(edit func(o *slo.SLO)) *slo.SLO {
	o := shopSLO()
	o.Alerting.Page.MinEvents, o.Alerting.Ticket.MinEvents = 100, 100
	if edit != nil {
		edit(o)
	}
	return o
}

type alertAt struct {
	sev               slo.Severity
	fired, resolved   string // hh:mm of the backtest's day; resolved "" while firing at the end
	events, condition string // removed alerts only
}

func clock(t time.Time) string { return t.Format("15:04") }

// TestLowTrafficAlerts replays the quiet night with and without the
// guard: without it the night's 3 errors in 5 requests page from 03:05
// (1h burn 50, 5m burn 600) to 04:05; with minEvents 100 the 1h window
// counts 5 events and holds, so only the outage at 08:00 pages, in both
// replays. The outage also opens a ticket, which the guard does not touch.
func TestLowTrafficAlerts(t *testing.T) {
	outage := []alertAt{{sev: slo.SeverityPage, fired: "08:05", resolved: "09:00"}, {sev: slo.SeverityTicket, fired: "08:05"}}
	nightPage := alertAt{sev: slo.SeverityPage, fired: "03:05", resolved: "04:05"}
	tests := []struct {
		name      string
		edit      func(o *slo.SLO)
		alerts    []alertAt
		minEvents map[slo.Severity]float64 // nil: no lowTraffic report
		removed   []alertAt
	}{
		{
			name:   "no guard",
			edit:   func(o *slo.SLO) { o.Alerting.Page.MinEvents, o.Alerting.Ticket.MinEvents = 0, 0 },
			alerts: append([]alertAt{nightPage}, outage...),
		},
		{
			name:      "minEvents 100 removes the night's page",
			alerts:    outage,
			minEvents: map[slo.Severity]float64{slo.SeverityPage: 100, slo.SeverityTicket: 100},
			removed:   []alertAt{{sev: slo.SeverityPage, fired: "03:05", resolved: "04:05", events: "5", condition: "burn rate 50 over 1h and 600 over 5m > 14.4"}},
		},
		{
			// The hour counted 5 events: a guard of 4.9 lets it page.
			name:      "minEvents just under the night's 5 events",
			edit:      func(o *slo.SLO) { o.Alerting.Page.MinEvents, o.Alerting.Ticket.MinEvents = 4.9, 4.9 },
			alerts:    append([]alertAt{nightPage}, outage...),
			minEvents: map[slo.Severity]float64{slo.SeverityPage: 4.9, slo.SeverityTicket: 4.9},
		},
		{
			name:      "minEvents just over them",
			edit:      func(o *slo.SLO) { o.Alerting.Page.MinEvents, o.Alerting.Ticket.MinEvents = 5.1, 5.1 },
			alerts:    outage,
			minEvents: map[slo.Severity]float64{slo.SeverityPage: 5.1, slo.SeverityTicket: 5.1},
			removed:   []alertAt{{sev: slo.SeverityPage, fired: "03:05", resolved: "04:05", events: "5", condition: "burn rate 50 over 1h and 600 over 5m > 14.4"}},
		},
		{
			name:      "guard on the ticket only",
			edit:      func(o *slo.SLO) { o.Alerting.Page.MinEvents = 0 },
			alerts:    append([]alertAt{nightPage}, outage...),
			minEvents: map[slo.Severity]float64{slo.SeverityTicket: 100},
		},
		{
			// A long window that is not a multiple of the 5m step is
			// asked directly: 62 minutes of 5 requests an hour.
			name: "page window of 62 minutes",
			edit: func(o *slo.SLO) {
				o.Alerting.Tiers = append([]slo.BurnTier{{Severity: slo.SeverityPage, Long: 62 * time.Minute, Short: 5 * time.Minute, Factor: 14.4}},
					slo.BurnTiers(o.Window)[2:]...)
			},
			alerts:    []alertAt{{sev: slo.SeverityPage, fired: "08:05", resolved: "08:35"}, {sev: slo.SeverityTicket, fired: "08:05"}},
			minEvents: map[slo.Severity]float64{slo.SeverityPage: 100, slo.SeverityTicket: 100},
			removed:   []alertAt{{sev: slo.SeverityPage, fired: "03:05", resolved: "04:05", events: "5.1667", condition: "burn rate 48.39 over 1h2m and 600 over 5m > 14.4"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{fn: quietNight.answer}
			total := 0
			rep, err := backtest.Run(context.Background(), &slo.Set{SLOs: []*slo.SLO{guardedSLO(tt.edit)}}, backtest.Options{
				Querier: f, From: from, To: to, Progress: func(_, tot int, _ string) { total = tot },
			})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(f.ranges) {
				t.Errorf("progress planned %d range queries, %d were asked", total, len(f.ranges))
			}
			s := rep.SLOs[0]
			var got []alertAt
			for _, a := range s.Alerts {
				got = append(got, toAlertAt(a, "", ""))
			}
			checkAlerts(t, "alerts", got, tt.alerts)
			if tt.minEvents == nil {
				if s.LowTraffic != nil {
					t.Errorf("lowTraffic %+v without a guard", s.LowTraffic)
				}
				return
			}
			l := s.LowTraffic
			if l == nil {
				t.Fatal("no lowTraffic report")
			}
			if len(l.MinEvents) != len(tt.minEvents) {
				t.Errorf("minEvents %v, want %v", l.MinEvents, tt.minEvents)
			}
			for sev, v := range tt.minEvents {
				if l.MinEvents[sev] != v {
					t.Errorf("minEvents %v, want %v", l.MinEvents, tt.minEvents)
				}
			}
			pages := 0
			for _, a := range tt.removed {
				if a.sev == slo.SeverityPage {
					pages++
				}
			}
			if l.AlertsRemoved != len(tt.removed) || l.PagesRemoved != pages {
				t.Errorf("%d alerts (%d pages) removed, want %d (%d)", l.AlertsRemoved, l.PagesRemoved, len(tt.removed), pages)
			}
			got = nil
			for _, a := range l.Removed {
				got = append(got, toAlertAt(a.Alert, formatEvents(float64(a.Events)), a.Condition))
				if a.Window == "" {
					t.Errorf("removed alert %+v without its window", a)
				}
			}
			checkAlerts(t, "removed", got, tt.removed)
		})
	}
}

func formatEvents(v float64) string {
	return strings.TrimRight(strings.TrimRight(strconvF(math.Round(v*1e4)/1e4), "0"), ".")
}

func strconvF(v float64) string { return model.SampleValue(v).String() }

func toAlertAt(a backtest.Alert, events, condition string) alertAt {
	out := alertAt{sev: a.Severity, fired: clock(a.FiredAt), events: events, condition: condition}
	if a.ResolvedAt != nil {
		out.resolved = clock(*a.ResolvedAt)
	}
	return out
}

func checkAlerts(t *testing.T, what string, got, want []alertAt) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s\n%+v\nwant\n%+v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s %d: %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// scriptFake answers "probe" and "events" with values by step (the last
// one repeated), and the SLO's queries from the quiet night.
func scriptFake(values, events []float64) func(string, time.Time) []sample {
	at := func(vs []float64, t time.Time) []sample {
		k := int(t.Sub(from) / backtest.DefaultStep)
		v := vs[min(k, len(vs)-1)]
		if v == missing {
			return nil
		}
		return []sample{{v: v}}
	}
	return func(q string, t time.Time) []sample {
		switch q {
		case "probe":
			return at(values, t)
		case "events":
			return at(events, t)
		}
		return quietNight.answer(q, t)
	}
}

// TestLowTrafficVerdicts replays hypotheses with and without their
// probes' guards and counts the verdict changes the guards removed and
// added.
func TestLowTrafficVerdicts(t *testing.T) {
	ok, bad := 0.001, 0.05
	values := []float64{ok, ok, ok, bad, bad, bad, ok, ok, ok, ok, ok, bad, bad, ok}
	// The first failures (steps 3 to 5) come on 5 events, the second
	// (11, 12) on 500.
	events := []float64{500, 500, 500, 5, 5, 5, 500}
	guardedProbe := func(h *slo.Hypothesis) { h.Probes[0].Events, h.Probes[0].MinEvents = "events", 100 }
	tests := []struct {
		name             string
		hyp              *slo.Hypothesis
		want             []change
		removed, added   []change
		failsRemoved     int
		minEventsByProbe map[string]float64
	}{
		{
			// Without the guard: pass at 1, fail at 4, pass at 7, fail
			// at 12, pass at 14. With it the quiet steps are unknown
			// (at once), and pass returns after passAfter 2.
			name: "onLowTraffic unknown",
			hyp:  steady(guardedProbe),
			want: []change{
				{1, "unknown", "pass", "error-rate = 0.001 < 0.01"},
				{3, "pass", "unknown", "error-rate: 5 events, fewer than minEvents 100: too little traffic to judge (onLowTraffic: unknown)"},
				{7, "unknown", "pass", "error-rate = 0.001 < 0.01"},
				{12, "pass", "fail", "error-rate = 0.05 not < 0.01"},
				{14, "fail", "pass", "error-rate = 0.001 < 0.01"},
			},
			removed:      []change{{4, "pass", "fail", "error-rate = 0.05 not < 0.01"}},
			added:        []change{{3, "pass", "unknown", "error-rate: 5 events, fewer than minEvents 100: too little traffic to judge (onLowTraffic: unknown)"}},
			failsRemoved: 1,
		},
		{
			name: "onLowTraffic pass",
			hyp:  steady(func(h *slo.Hypothesis) { guardedProbe(h); h.OnLowTraffic = slo.PolicyPass }),
			want: []change{
				{1, "unknown", "pass", "error-rate = 0.001 < 0.01"},
				{12, "pass", "fail", "error-rate = 0.05 not < 0.01"},
				{14, "fail", "pass", "error-rate = 0.001 < 0.01"},
			},
			removed:      []change{{4, "pass", "fail", "error-rate = 0.05 not < 0.01"}, {7, "fail", "pass", "error-rate = 0.001 < 0.01"}},
			failsRemoved: 1,
		},
		{
			// minEvents 5 is met by the quiet steps' 5 events.
			name: "minEvents met",
			hyp:  steady(func(h *slo.Hypothesis) { guardedProbe(h); h.Probes[0].MinEvents = 5 }),
			want: []change{
				{1, "unknown", "pass", "error-rate = 0.001 < 0.01"},
				{4, "pass", "fail", "error-rate = 0.05 not < 0.01"},
				{7, "fail", "pass", "error-rate = 0.001 < 0.01"},
				{12, "pass", "fail", "error-rate = 0.05 not < 0.01"},
				{14, "fail", "pass", "error-rate = 0.001 < 0.01"},
			},
		},
		{
			// The SLO's own events over the probe's 1h window: below 100
			// from 03:00 (step 36) to 05:00 (step 60). Without the guard
			// the 1h burn rate is over 6 from 03:05 to 04:55 (the night)
			// and 08:05 to 09:25 (the outage).
			name: "SLO probe",
			hyp: &slo.Hypothesis{Name: "budget", FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnLowTraffic: slo.PolicyUnknown, Series: slo.SeriesAll,
				Probes: []*slo.Probe{{Name: "burn", SLO: "shop", MinEvents: 100, BurnRate: &slo.BurnRateTolerance{Window: time.Hour, Below: 6}}}},
			want: []change{
				{0, "unknown", "pass", "burn: burn rate over 1h = 0 < 6"},
				{36, "pass", "unknown", "burn: SLO shop counted 5 events over 1h, fewer than minEvents 100: too little traffic to judge (onLowTraffic: unknown)"},
				{61, "unknown", "pass", "burn: burn rate over 1h = 0 < 6"},
				{97, "pass", "fail", "burn: burn rate over 1h = 83.33 not < 6"},
				{114, "fail", "pass", "burn: burn rate over 1h = 0 < 6"},
			},
			removed: []change{
				{37, "pass", "fail", "burn: burn rate over 1h = 50 not < 6"},
				{60, "fail", "pass", "burn: burn rate over 1h = 0 < 6"},
			},
			added: []change{
				{36, "pass", "unknown", "burn: SLO shop counted 5 events over 1h, fewer than minEvents 100: too little traffic to judge (onLowTraffic: unknown)"},
				{61, "unknown", "pass", "burn: burn rate over 1h = 0 < 6"},
			},
			failsRemoved:     1,
			minEventsByProbe: map[string]float64{"burn": 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := &slo.Set{SLOs: []*slo.SLO{shopSLO()}, Hypotheses: []*slo.Hypothesis{tt.hyp}}
			f := &fake{fn: scriptFake(values, events)}
			total := 0
			rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to, Progress: func(_, tot int, _ string) { total = tot }})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(f.ranges) {
				t.Errorf("progress planned %d range queries, %d were asked", total, len(f.ranges))
			}
			h := rep.Hypotheses[0]
			checkChanges(t, "changes", h.Changes, tt.want)
			l := h.LowTraffic
			if l == nil {
				t.Fatal("no lowTraffic report")
			}
			checkChanges(t, "removed", l.Removed, tt.removed)
			checkChanges(t, "added", l.Added, tt.added)
			if l.FlipsRemoved != len(tt.removed) || l.FlipsAdded != len(tt.added) || l.FailsRemoved != tt.failsRemoved {
				t.Errorf("flips removed %d (%d to fail), added %d; want %d (%d), %d", l.FlipsRemoved, l.FailsRemoved, l.FlipsAdded, len(tt.removed), tt.failsRemoved, len(tt.added))
			}
			want := tt.minEventsByProbe
			if want == nil {
				want = map[string]float64{"error-rate": tt.hyp.Probes[0].MinEvents}
			}
			if len(l.MinEvents) != len(want) || l.MinEvents[tt.hyp.Probes[0].Name] != want[tt.hyp.Probes[0].Name] {
				t.Errorf("minEvents %v, want %v", l.MinEvents, want)
			}
		})
	}
}

func checkChanges(t *testing.T, what string, cs []backtest.Change, want []change) {
	t.Helper()
	var got []change
	for _, c := range cs {
		got = append(got, change{int(c.At.Sub(from) / backtest.DefaultStep), c.From, c.To, c.Reason})
	}
	if len(got) != len(want) {
		t.Fatalf("%s\n%+v\nwant\n%+v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s %d: %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// TestLowTrafficReport shows what the guards removed in both formats.
func TestLowTrafficReport(t *testing.T) {
	hyp := steady(func(h *slo.Hypothesis) { h.Probes[0].Events, h.Probes[0].MinEvents = "events", 100 })
	set := &slo.Set{SLOs: []*slo.SLO{guardedSLO(nil)}, Hypotheses: []*slo.Hypothesis{hyp}}
	ok, bad := 0.001, 0.05
	f := &fake{fn: scriptFake([]float64{ok, ok, ok, bad, bad, bad, ok}, []float64{500, 500, 500, 5, 5, 5, 500})}
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: f, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := backtest.WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  minEvents 100 removed 1 alert (1 page) on low traffic\n",
		"    page   would have fired 2026-11-20T03:05:00Z on 5 events over 1h: burn rate 50 over 1h and 600 over 5m > 14.4\n",
		"steady  minEvents 100 on error-rate removed 1 verdict change (1 to fail) on low traffic and added 1\n",
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
			LowTraffic *struct {
				MinEvents     map[string]float64 `json:"minEvents"`
				AlertsRemoved int                `json:"alertsRemoved"`
				PagesRemoved  int                `json:"pagesRemoved"`
				Removed       []struct {
					Severity   string     `json:"severity"`
					FiredAt    time.Time  `json:"firedAt"`
					ResolvedAt *time.Time `json:"resolvedAt"`
					Condition  string     `json:"condition"`
					Events     float64    `json:"events"`
					Window     string     `json:"window"`
				} `json:"removed"`
			} `json:"lowTraffic"`
		} `json:"slos"`
		Hypotheses []struct {
			LowTraffic *struct {
				MinEvents    map[string]float64 `json:"minEvents"`
				FlipsRemoved int                `json:"flipsRemoved"`
				FailsRemoved int                `json:"failsRemoved"`
				FlipsAdded   int                `json:"flipsAdded"`
				Removed      []struct {
					At time.Time `json:"at"`
					To string    `json:"to"`
				} `json:"removed"`
				Added []struct {
					At time.Time `json:"at"`
					To string    `json:"to"`
				} `json:"added"`
			} `json:"lowTraffic"`
		} `json:"hypotheses"`
	}
	if err := json.Unmarshal(js.Bytes(), &shape); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	l := shape.SLOs[0].LowTraffic
	if l == nil || l.MinEvents["page"] != 100 || l.MinEvents["ticket"] != 100 || l.AlertsRemoved != 1 || l.PagesRemoved != 1 || len(l.Removed) != 1 ||
		l.Removed[0].Severity != "page" || !l.Removed[0].FiredAt.Equal(from.Add(3*time.Hour+5*time.Minute)) || l.Removed[0].ResolvedAt == nil ||
		math.Abs(l.Removed[0].Events-5) > 1e-9 || l.Removed[0].Window != "1h" {
		t.Errorf("JSON lowTraffic of the SLO: %s", js.String())
	}
	h := shape.Hypotheses[0].LowTraffic
	if h == nil || h.MinEvents["error-rate"] != 100 || h.FlipsRemoved != 1 || h.FailsRemoved != 1 || h.FlipsAdded != 1 || len(h.Removed) != 1 || len(h.Added) != 1 ||
		h.Removed[0].To != "fail" || !h.Removed[0].At.Equal(from.Add(4*backtest.DefaultStep)) {
		t.Errorf("JSON lowTraffic of the hypothesis: %s", js.String())
	}
}
