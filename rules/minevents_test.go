package rules_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// TestMinEventsGuard pins the guarded page alert of the windows style and
// the totals it reads: each tier ANDed with its long window's events,
// recorded for the guarded long windows only.
func TestMinEventsGuard(t *testing.T) {
	o := ratioSLO("x", slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(e[{{.window}}]))`, Total: `sum(rate(t[{{.window}}]))`}})
	o.Alerting.Page.MinEvents = 100
	groups, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string]string{}
	for _, r := range findGroup(groups, "slogate-x").Rules {
		if strings.HasPrefix(r.Record, rules.SLITotalPrefix) {
			totals[r.Record] = r.Expr
		}
	}
	wantTotals := map[string]string{
		"slo:sli_total:increase1h": "sum(rate(t[1h])) * 3600",
		"slo:sli_total:increase6h": "sum(rate(t[6h])) * 21600",
	}
	if !maps.Equal(totals, wantTotals) {
		t.Errorf("recorded totals %v, want %v (the page tiers' long windows only)", totals, wantTotals)
	}
	alerts := findGroup(groups, "slogate-x:alerts").Rules
	want := `(((slo:sli_error:ratio_rate1h{service="shop",slo="x"} > (14.4 * 0.001)) and (slo:sli_error:ratio_rate5m{service="shop",slo="x"} > (14.4 * 0.001))) and (slo:sli_total:increase1h{service="shop",slo="x"} >= 100))` +
		` or (((slo:sli_error:ratio_rate6h{service="shop",slo="x"} > (6 * 0.001)) and (slo:sli_error:ratio_rate30m{service="shop",slo="x"} > (6 * 0.001))) and (slo:sli_total:increase6h{service="shop",slo="x"} >= 100))`
	if alerts[0].Expr != want {
		t.Errorf("page\ngot  %s\nwant %s", alerts[0].Expr, want)
	}
	if strings.Contains(alerts[1].Expr, rules.SLITotalPrefix) {
		t.Errorf("unguarded ticket reads the totals: %s", alerts[1].Expr)
	}
}

// TestMinEventsOnlyAddsTheGuard: in every style, the rules of an SLO with
// guards are those of the same SLO without, byte for byte, once the
// recorded totals, the guard operands and the annotation's clause about
// them are taken out; so an SLO without minEvents gets the rules it had
// before guards existed (the goldens of the good and example definitions
// did not change with them).
func TestMinEventsOnlyAddsTheGuard(t *testing.T) {
	set := load(t, "../testdata/rules/minevents.yaml")
	for _, style := range rules.Styles {
		for _, o := range set.SLOs {
			if o.Alerting.Page.MinEvents == 0 && o.Alerting.Ticket.MinEvents == 0 {
				continue
			}
			t.Run(string(style)+"/"+o.Name, func(t *testing.T) {
				bare := *o
				bare.Alerting.Page.MinEvents, bare.Alerting.Ticket.MinEvents = 0, 0
				want := render(t, &bare, style)
				guarded, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{Style: style})
				if err != nil {
					t.Fatal(err)
				}
				stripped, totals, guards := stripGuards(t, guarded)
				if totals == 0 || guards == 0 {
					t.Fatalf("%d totals recorded, %d guards: want some of each", totals, guards)
				}
				var got bytes.Buffer
				if err := rules.Write(&got, stripped); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("without its guards:\n%s\nwithout minEvents:\n%s", got.Bytes(), want)
				}
			})
		}
	}
}

// TestMinEventsOffTiers: a guard on a tier that does not alert records
// nothing and changes nothing.
func TestMinEventsOffTiers(t *testing.T) {
	ind := slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(e[{{.window}}]))`, Total: `sum(rate(t[{{.window}}]))`}}
	for _, tt := range []struct {
		name string
		edit func(o *slo.SLO)
	}{
		{"page off", func(o *slo.SLO) { o.Alerting.Page.Enabled = false }},
		{"alerting off", func(o *slo.SLO) { o.Alerting.Enabled = false }},
	} {
		for _, style := range rules.Styles {
			t.Run(tt.name+"/"+string(style), func(t *testing.T) {
				bare := ratioSLO("x", ind)
				tt.edit(bare)
				guarded := ratioSLO("x", ind)
				tt.edit(guarded)
				guarded.Alerting.Page.MinEvents = 100
				if got, want := render(t, guarded, style), render(t, bare, style); !bytes.Equal(got, want) {
					t.Errorf("guard on a silent tier:\n%s\nwithout:\n%s", got, want)
				}
			})
		}
	}
}

// TestRawMinEventsRefused: a raw indicator has no events to count, so its
// guard has no rule equivalent; the error says so and names the SLO. The
// loader refuses such a guard in a file; an SLO built in code can still
// carry one.
func TestRawMinEventsRefused(t *testing.T) {
	set, diags := slo.LoadBytes("raw.yaml", []byte(`apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: uptime}
spec:
  service: s
  objective: 99.9
  window: 30d
  indicator: {raw: {errorRatio: '1 - avg_over_time(up[{{.window}}])'}}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	set.SLOs[0].Alerting.Ticket.MinEvents = 3600
	for _, style := range rules.Styles {
		_, err := rules.Generate(set, rules.Options{Style: style})
		if !errors.Is(err, rules.ErrRawMinEvents) || !strings.Contains(err.Error(), `raw.yaml:1:1: slo "uptime": alerting minEvents`) {
			t.Errorf("style %s: %v, want ErrRawMinEvents naming the SLO and where", style, err)
		}
	}
}

// burstDefs are two SLOs over the same requests, one without guards, one
// whose page needs 100 events over its long window and whose ticket
// needs 3.
const burstDefs = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: burst-unguarded}
spec:
  service: quiet
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="quiet",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="quiet"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: burst-guarded}
spec:
  service: quiet
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="quiet",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="quiet"}[{{.window}}]))
  alerting:
    page: {minEvents: 100}
    ticket: {minEvents: 3}
`

// burstFiring is which burn-rate alerts a low-traffic burst (5 requests, 4
// failing) fires: "<slo> <severity>".
var burstFiring = []string{"burst-guarded ticket", "burst-unguarded page", "burst-unguarded ticket"}

// TestMinEventsMatchEvaluator: after a burst of 5 requests, 4 failing, in
// an otherwise idle service, slogate's evaluator pages for the unguarded
// SLO and not for the guarded one (100 events needed), whose ticket (3
// needed) fires; the rules of every style, evaluated by the PromQL engine
// over the same data at the same time, fire the same alerts.
func TestMinEventsMatchEvaluator(t *testing.T) {
	set, diags := slo.LoadBytes("burst.yaml", []byte(burstDefs))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	from := at.Add(-4 * 24 * time.Hour) // on the 5m grid of at
	data := testenv.NewMemStorage()
	requests := func(code string) labels.Labels {
		return labels.FromStrings(model.MetricNameLabel, "http_requests_total", "code", code, "job", "quiet")
	}
	for ts := from.Add(-10 * time.Minute); !ts.After(at); ts = ts.Add(15 * time.Second) {
		ok, failed := 0.0, 0.0
		if !ts.Before(at.Add(-2 * time.Minute)) {
			ok, failed = 1, 4
		}
		data.Add(requests("200"), ts.UnixMilli(), ok)
		data.Add(requests("500"), ts.UnixMilli(), failed)
	}

	q, err := embedded.New(embedded.Options{Storage: data})
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, o := range set.SLOs {
		st := evaluateAt(t, q, o, at)
		for _, a := range st.Alerts {
			if a.Firing {
				served = append(served, o.Name+" "+string(a.Severity))
			}
			if want := o.Name == "burst-guarded" && a.Severity == slo.SeverityPage; a.LowTraffic != want {
				t.Errorf("evaluator: %s %s lowTraffic %v, want %v", o.Name, a.Severity, a.LowTraffic, want)
			}
		}
	}
	slices.Sort(served)
	if !slices.Equal(served, burstFiring) {
		t.Fatalf("evaluator fires %q, want %q", served, burstFiring)
	}

	for _, style := range rules.Styles {
		t.Run(string(style), func(t *testing.T) {
			groups, err := rules.Generate(set, rules.Options{Style: style})
			if err != nil {
				t.Fatal(err)
			}
			_, results := recordGroups(t, data, groups, from, at)
			var fired []string
			for s := range results {
				if !strings.HasPrefix(s, `{__name__="ALERTS",`) {
					continue
				}
				ls, err := testParser.ParseMetric(s)
				if err != nil {
					t.Fatal(err)
				}
				name, sev := ls.Get("slo"), ls.Get("severity")
				if style == rules.StyleSloth {
					name, sev = ls.Get("sloth_slo"), ls.Get("sloth_severity")
				}
				fired = append(fired, name+" "+sev)
			}
			slices.Sort(fired)
			if !slices.Equal(fired, burstFiring) {
				t.Errorf("rules fire %q, want %q (as the evaluator)", fired, burstFiring)
			}
			total := fmt.Sprintf(`%s{%s="burst-guarded"}`, rules.SLITotalMetric(time.Hour), map[bool]string{true: "sloth_slo", false: "slo"}[style == rules.StyleSloth])
			if n := results[recordedKey(t, results, total)]; !(n >= 4 && n < 10) {
				t.Errorf("%s = %g, want the 5 requests of the burst", total, n)
			}
		})
	}
}

// recordedKey finds the one series of results that selector matches.
func recordedKey(t *testing.T, results map[string]float64, selector string) string {
	t.Helper()
	vs, err := testParser.ParseMetricSelector(selector)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for s := range results {
		ls, err := testParser.ParseMetric(s)
		if err != nil {
			t.Fatal(err)
		}
		if matchesAll(ls, vs) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d recorded series %v, want one", selector, len(found), found)
	}
	return found[0]
}

func matchesAll(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func render(t *testing.T, o *slo.SLO, style rules.Style) []byte {
	t.Helper()
	out, err := rules.Render(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{Style: style})
	if err != nil {
		t.Fatal(err)
	}
	// Render's header comment is followed by exactly what Write gives.
	_, body, ok := bytes.Cut(out, []byte("regenerate instead.\n"))
	if !ok {
		t.Fatalf("no header in\n%s", out)
	}
	return body
}

var testParser = parser.NewParser(parser.Options{})

var guardClause = regexp.MustCompile(`, with at least \S+ events over the long window`)

// stripGuards returns groups without the recorded totals, the guard
// operands of the alerts and the annotation's clause about them, and how
// many of the first two it took out.
func stripGuards(t *testing.T, groups *rulefmt.RuleGroups) (out *rulefmt.RuleGroups, totals, guards int) {
	t.Helper()
	isGuard := func(e parser.Expr) bool {
		found := false
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && strings.HasPrefix(vs.Name, rules.SLITotalPrefix) {
				found = true
			}
			return nil
		})
		return found
	}
	var strip func(e parser.Expr) parser.Expr
	strip = func(e parser.Expr) parser.Expr {
		switch n := e.(type) {
		case *parser.ParenExpr:
			n.Expr = strip(n.Expr)
		case *parser.BinaryExpr:
			if n.Op == parser.LAND && isGuard(n.RHS) {
				guards++
				lhs := strip(n.LHS)
				if pe, ok := lhs.(*parser.ParenExpr); ok {
					return pe.Expr
				}
				return lhs
			}
			n.LHS, n.RHS = strip(n.LHS), strip(n.RHS)
		}
		return e
	}
	out = &rulefmt.RuleGroups{}
	for _, g := range groups.Groups {
		var kept []rulefmt.Rule
		for _, r := range g.Rules {
			if strings.HasPrefix(r.Record, rules.SLITotalPrefix) {
				totals++
				continue
			}
			if r.Alert != "" {
				e, err := testParser.ParseExpr(r.Expr)
				if err != nil {
					t.Fatal(err)
				}
				r.Expr = strip(e).String()
				if d, ok := r.Annotations["description"]; ok {
					r.Annotations = maps.Clone(r.Annotations)
					r.Annotations["description"] = guardClause.ReplaceAllString(d, "")
				}
			}
			kept = append(kept, r)
		}
		g.Rules = kept
		out.Groups = append(out.Groups, g)
	}
	return out, totals, guards
}
