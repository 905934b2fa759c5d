package rules_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/rules")

var goldenCases = []struct {
	name, path string
}{
	{"good", "../testdata/definitions/good"},
	{"examples", "../examples/definitions"},
	{"minevents", "../testdata/rules/minevents.yaml"},
}

func load(t *testing.T, path string) *slo.Set {
	t.Helper()
	set, diags := slo.Load(path)
	if diags.HasErrors() {
		t.Fatalf("loading %s:\n%s", path, diags)
	}
	return set
}

// TestGolden compares the rules of the test and example definitions with
// testdata/rules/<definitions>-<style>.golden.
func TestGolden(t *testing.T) {
	for _, gc := range goldenCases {
		for _, style := range rules.Styles {
			name := gc.name + "-" + string(style)
			t.Run(name, func(t *testing.T) {
				out, err := rules.Render(load(t, gc.path), rules.Options{Style: style})
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("..", "testdata", "rules", name+".golden")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, out, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (refresh with go test ./rules -run TestGolden -update)", err)
				}
				if !bytes.Equal(out, want) {
					t.Errorf("rules differ from %s (refresh with -update if the change is meant)\n--- got\n%s", golden, out)
				}
			})
		}
	}
}

// TestPromtoolCheckRules runs the real promtool over the rules of every
// style, for the test and example definitions and Sloth's examples (whose
// own generated rules promtool refuses for one of them); its lint also
// catches duplicate rules across SLOs.
func TestPromtoolCheckRules(t *testing.T) {
	promtool := testenv.Binary(t, "promtool")
	cases := slices.Clone(goldenCases)
	for _, example := range slothExamples {
		cases = append(cases, struct{ name, path string }{"sloth-" + example, filepath.Join(slothCompatDir, example+".yml")})
	}
	for _, gc := range cases {
		for _, style := range rules.Styles {
			t.Run(gc.name+"-"+string(style), func(t *testing.T) {
				out, err := rules.Render(load(t, gc.path), rules.Options{Style: style})
				if err != nil {
					t.Fatal(err)
				}
				promtoolCheck(t, promtool, out)
			})
		}
	}
}

func promtoolCheck(t *testing.T, promtool string, content []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slogate.rules.yml")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "rules", path)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, res)
	}
	if !strings.Contains(string(res), "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", res)
	}
}

func ratioSLO(name string, ind slo.Indicator) *slo.SLO {
	return &slo.SLO{
		Name: name, Service: "shop", Objective: 99.9, Window: 30 * 24 * time.Hour, Indicator: ind,
		Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
	}
}

// TestErrorRatioQuery pins the error ratio of every indicator kind, the
// arithmetic the evaluator uses.
func TestErrorRatioQuery(t *testing.T) {
	tests := []struct {
		name string
		ind  slo.Indicator
		want string
	}{
		{
			name: "errors",
			ind:  slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(x{code="500"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}},
			want: `(sum(rate(x{code="500"}[1h])) or vector(0)) / sum(rate(x[1h]))`,
		},
		{
			name: "errors without sum are summed",
			ind:  slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `rate(x{code="500"}[{{.window}}])`, Total: `sum by (code) (rate(x[{{.window}}]))`}},
			want: `(sum(rate(x{code="500"}[1h])) or vector(0)) / sum(sum by (code) (rate(x[1h])))`,
		},
		{
			name: "good",
			ind:  slo.Indicator{Ratio: &slo.RatioIndicator{Good: `sum(rate(x{code="200"}[{{.window}}]))`, Total: `(sum(rate(x[{{.window}}])))`}},
			want: `1 - ((sum(rate(x{code="200"}[1h])) or vector(0)) / sum(rate(x[1h])))`,
		},
		{
			name: "classic latency",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `h_seconds{job="a"}`, Threshold: 1}},
			want: `1 - ((sum(rate(h_seconds_bucket{job="a",le=~"1|1\\.0"}[1h])) or vector(0)) / sum(rate(h_seconds_count{job="a"}[1h])))`,
		},
		{
			name: "classic latency, fractional threshold",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `{__name__="h_seconds"}`, Threshold: 0.25}},
			want: `1 - ((sum(rate(h_seconds_bucket{le=~"0\\.25"}[1h])) or vector(0)) / sum(rate(h_seconds_count[1h])))`,
		},
		{
			name: "native latency",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `h_seconds{job="a"}`, Threshold: 0.3, Native: true}},
			want: `1 - histogram_fraction(0, 0.3, sum(rate(h_seconds{job="a"}[1h])))`,
		},
		{
			name: "raw",
			ind:  slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up{job="a"}[{{.window}}])`}},
			want: `avg(1 - avg_over_time(up{job="a"}[1h]))`,
		},
		{
			name: "scalar",
			ind:  slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `scalar(up)`}},
			want: `vector(scalar(up))`,
		},
		{
			name: "user label values stay escaped",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `h{path="/a\"b\\c"}`, Threshold: 0.5}},
			want: `1 - ((sum(rate(h_bucket{le=~"0\\.5",path="/a\"b\\c"}[1h])) or vector(0)) / sum(rate(h_count{path="/a\"b\\c"}[1h])))`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rules.ErrorRatioQuery(ratioSLO("x", tt.ind), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func findGroup(groups *rulefmt.RuleGroups, name string) *rulefmt.RuleGroup {
	for i := range groups.Groups {
		if groups.Groups[i].Name == name {
			return &groups.Groups[i]
		}
	}
	return nil
}

// TestAlerts checks the alerting rules: tiers, thresholds, labels and
// annotations, disabled tiers left out.
func TestAlerts(t *testing.T) {
	ind := slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(x{code="500"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}}
	tests := []struct {
		name       string
		edit       func(o *slo.SLO)
		severities []string
		alertName  string
	}{
		{name: "both tiers", severities: []string{"page", "ticket"}, alertName: slo.DefaultAlertName},
		{name: "ticket off", edit: func(o *slo.SLO) { o.Alerting.Ticket.Enabled = false }, severities: []string{"page"}, alertName: slo.DefaultAlertName},
		{name: "page off, named", edit: func(o *slo.SLO) { o.Alerting.Page.Enabled = false; o.Alerting.Name = "ShopBurn" }, severities: []string{"ticket"}, alertName: "ShopBurn"},
		{name: "alerting off", edit: func(o *slo.SLO) { o.Alerting.Enabled = false }},
		{name: "user severities", edit: func(o *slo.SLO) {
			o.Alerting.Page.Labels = map[string]string{"severity": "critical"}
			o.Alerting.Ticket.Labels = map[string]string{"severity": "warning"}
		}, severities: []string{"critical", "warning"}, alertName: slo.DefaultAlertName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ratioSLO("shop-availability", ind)
			o.Labels = map[string]string{"team": `pay"ments`}
			o.Alerting.Labels = map[string]string{"route": "shop"}
			o.Alerting.Annotations = map[string]string{"runbook_url": "https://runbooks/shop"}
			if tt.edit != nil {
				tt.edit(o)
			}
			groups, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{})
			if err != nil {
				t.Fatal(err)
			}
			g := findGroup(groups, "slogate-shop-availability:alerts")
			if len(tt.severities) == 0 {
				if g != nil {
					t.Fatalf("alerting group present with alerting off: %+v", g)
				}
				return
			}
			if g == nil {
				t.Fatal("no alerting group")
			}
			if len(g.Rules) != len(tt.severities) {
				t.Fatalf("%d alert rules, want %d: %+v", len(g.Rules), len(tt.severities), g.Rules)
			}
			for i, r := range g.Rules {
				if r.Alert != tt.alertName || r.Labels["severity"] != tt.severities[i] {
					t.Errorf("rule %d: alert %q severity %q, want %q %q", i, r.Alert, r.Labels["severity"], tt.alertName, tt.severities[i])
				}
				if r.Labels["slo"] != "shop-availability" || r.Labels["service"] != "shop" || r.Labels["route"] != "shop" {
					t.Errorf("rule %d labels %v: want slo, service and the alerting labels", i, r.Labels)
				}
				if r.Annotations["runbook_url"] != "https://runbooks/shop" || r.Annotations["summary"] == "" {
					t.Errorf("rule %d annotations %v", i, r.Annotations)
				}
			}
			if r := g.Rules[0]; tt.severities[0] == "page" || tt.severities[0] == "critical" {
				want := `((slo:sli_error:ratio_rate1h{service="shop",slo="shop-availability"} > (14.4 * 0.001)) and (slo:sli_error:ratio_rate5m{service="shop",slo="shop-availability"} > (14.4 * 0.001)))` +
					` or ((slo:sli_error:ratio_rate6h{service="shop",slo="shop-availability"} > (6 * 0.001)) and (slo:sli_error:ratio_rate30m{service="shop",slo="shop-availability"} > (6 * 0.001)))`
				if r.Expr != want {
					t.Errorf("page expression\ngot  %s\nwant %s", r.Expr, want)
				}
			}
			rec := findGroup(groups, "slogate-shop-availability")
			if rec == nil || rec.Rules[0].Labels["team"] != `pay"ments` {
				t.Fatalf("recording group missing or without the SLO's labels: %+v", rec)
			}
		})
	}
}

// TestRecordedWindows: the evaluated windows plus those the burn-rate
// tiers read, which a short SLO window does not include.
func TestRecordedWindows(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		window time.Duration
		want   string
	}{
		{30 * day, "5m 30m 1h 2h 6h 1d 3d 30d"},
		{7 * day, "5m 30m 1h 2h 6h 1d 3d 1w"},
		{day, "5m 30m 1h 2h 6h 1d 3d"},
		{4 * time.Hour, "5m 30m 1h 2h 4h 6h 1d 3d"},
	}
	for _, tt := range tests {
		t.Run(tt.window.String(), func(t *testing.T) {
			var got []string
			for _, w := range rules.RecordedWindows(&slo.SLO{Window: tt.window}) {
				got = append(got, strings.TrimPrefix(rules.SLIErrorMetric(w), rules.SLIErrorPrefix))
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("windows %s, want %s", s, tt.want)
			}
		})
	}
}

func TestBudgetRules(t *testing.T) {
	o := ratioSLO("x", slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up[{{.window}}])`}})
	o.Objective = 99.95
	groups, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{Style: rules.StyleWindows})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		rules.ObjectiveMetric:       "vector(0.9995)",
		rules.ErrorBudgetMetric:     "vector(0.0005)",
		rules.BudgetRemainingMetric: `1 - (slo:sli_error:ratio_rate30d{service="shop",slo="x"} / 0.0005)`,
	}
	for _, r := range findGroup(groups, "slogate-x").Rules {
		if w, ok := want[r.Record]; ok {
			if r.Expr != w {
				t.Errorf("%s: %s, want %s", r.Record, r.Expr, w)
			}
			delete(want, r.Record)
		}
	}
	if len(want) > 0 {
		t.Errorf("rules missing: %v", want)
	}
}

// TestBucketRules pins the event buckets of each kind of indicator and the
// group intervals they rely on.
func TestBucketRules(t *testing.T) {
	tests := []struct {
		name       string
		ind        slo.Indicator
		bad, total string
	}{
		{
			name:  "errors",
			ind:   slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(x{code="500"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}},
			bad:   `(sum(rate(x{code="500"}[5m])) or vector(0)) * 300`,
			total: `sum(rate(x[5m])) * 300`,
		},
		{
			name:  "good",
			ind:   slo.Indicator{Ratio: &slo.RatioIndicator{Good: `sum(rate(x{code="200"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}},
			bad:   `(sum(rate(x[5m])) - (sum(rate(x{code="200"}[5m])) or vector(0))) * 300`,
			total: `sum(rate(x[5m])) * 300`,
		},
		{
			name:  "raw",
			ind:   slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up[{{.window}}])`}},
			bad:   `(clamp(avg(1 - avg_over_time(up[5m])), 0, 1) >= 0) * 300`,
			total: `((clamp(avg(1 - avg_over_time(up[5m])), 0, 1) >= 0) * 0) + 300`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{ratioSLO("x", tt.ind)}}, rules.Options{Style: rules.StyleBuckets})
			if err != nil {
				t.Fatal(err)
			}
			b := findGroup(groups, "slogate-x:buckets")
			if b == nil || b.Interval.String() != "5m" || len(b.Rules) != 2 {
				t.Fatalf("bucket group %+v: want 2 rules every 5m", b)
			}
			if b.Rules[0].Expr != tt.bad || b.Rules[0].Labels["type"] != "bad" {
				t.Errorf("bad: %s %v\nwant %s", b.Rules[0].Expr, b.Rules[0].Labels, tt.bad)
			}
			if b.Rules[1].Expr != tt.total || b.Rules[1].Labels["type"] != "total" {
				t.Errorf("total: %s %v\nwant %s", b.Rules[1].Expr, b.Rules[1].Labels, tt.total)
			}
			rec := findGroup(groups, "slogate-x")
			if rec == nil || rec.Interval.String() != "30s" {
				t.Fatalf("window group %+v: want it every 30s", rec)
			}
			want := `sum_over_time(slo:sli_events:increase5m{service="shop",slo="x",type="bad"}[1h]) / ignoring (type) sum_over_time(slo:sli_events:increase5m{service="shop",slo="x",type="total"}[1h])`
			for _, r := range rec.Rules {
				if r.Record == "slo:sli_error:ratio_rate1h" && r.Expr != want {
					t.Errorf("1h window: %s\nwant %s", r.Expr, want)
				}
			}
		})
	}
}

func TestUnknownStyle(t *testing.T) {
	if _, err := rules.Generate(&slo.Set{}, rules.Options{Style: "pyrra"}); err == nil || !strings.Contains(err.Error(), "unknown rule style") {
		t.Fatalf("err %v, want unknown rule style", err)
	}
}

// TestBrokenDefinitionIsInternal: a query the loader would have refused
// is slogate's bug if it reaches the generator, and says so.
func TestBrokenDefinitionIsInternal(t *testing.T) {
	o := ratioSLO("x", slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(x[{{.window}}]`, Total: `sum(rate(x[{{.window}}]))`}})
	_, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{})
	if !errors.Is(err, rules.ErrInternal) {
		t.Fatalf("err %v, want ErrInternal", err)
	}
}

func TestEmptySet(t *testing.T) {
	out, err := rules.Render(&slo.Set{}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "groups: []") {
		t.Errorf("empty set rendered as\n%s", out)
	}
}

// TestGroupNamesNeverCollide: SLO "api" with alerts and SLO "api-alerts"
// (or "api-buckets" in the bucket style) once gave the same group name, and
// the generated file did not load ("0:0: groupname ... is repeated").
func TestGroupNamesNeverCollide(t *testing.T) {
	ind := slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(e[{{.window}}]))`, Total: `sum(rate(t[{{.window}}]))`}}
	var slos []*slo.SLO
	for _, name := range []string{"api", "api-alerts", "api-buckets", "api-alerts-alerts"} {
		slos = append(slos, ratioSLO(name, ind))
	}
	for _, style := range rules.Styles {
		out, err := rules.Render(&slo.Set{SLOs: slos}, rules.Options{Style: style})
		if err != nil {
			t.Fatalf("style %s: %v", style, err)
		}
		if strings.Contains(string(out), "0:0") {
			t.Fatalf("style %s: output mentions 0:0", style)
		}
		groups, errs := rulefmt.Parse(out, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("style %s: %v", style, errs)
		}
		seen := map[string]bool{}
		for _, g := range groups.Groups {
			if seen[g.Name] {
				t.Errorf("style %s: group %q twice", style, g.Name)
			}
			seen[g.Name] = true
		}
	}
}

// TestOwnTiersAndIntervals: the windows and buckets styles record the
// windows of the SLO's own burn-rate tiers (Sloth AlertWindows) and alert
// with their factors, as the evaluator does; the windows style takes the
// SLO's rule intervals, the bucket style keeps its own.
func TestOwnTiersAndIntervals(t *testing.T) {
	day := 24 * time.Hour
	o := ratioSLO("x", slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(e[{{.window}}]))`, Total: `sum(rate(t[{{.window}}]))`}})
	o.Window = 7 * day
	o.Alerting.Tiers = []slo.BurnTier{
		{Severity: slo.SeverityPage, Short: 10 * time.Minute, Long: 2 * time.Hour, Factor: 13.44, Budget: 0.16},
		{Severity: slo.SeverityPage, Short: 30 * time.Minute, Long: 6 * time.Hour, Factor: 3.5, Budget: 0.125},
		{Severity: slo.SeverityTicket, Short: 2 * time.Hour, Long: day, Factor: 1.4, Budget: 0.2},
		{Severity: slo.SeverityTicket, Short: 12 * time.Hour, Long: 4 * day, Factor: 0.98, Budget: 0.56},
	}
	o.RuleIntervals = slo.RuleIntervals{SLIError: time.Minute, Metadata: 5 * time.Minute, Alert: 30 * time.Second}
	var windows []string
	for _, w := range rules.RecordedWindows(o) {
		windows = append(windows, strings.TrimPrefix(rules.SLIErrorMetric(w), rules.SLIErrorPrefix))
	}
	if got, want := strings.Join(windows, " "), "5m 10m 30m 1h 2h 6h 12h 1d 3d 4d 1w"; got != want {
		t.Errorf("windows %s, want %s", got, want)
	}
	for _, tt := range []struct {
		style     rules.Style
		intervals string
	}{{rules.StyleWindows, "1m 30s"}, {rules.StyleBuckets, "5m 30s 30s"}} {
		groups, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{o}}, rules.Options{Style: tt.style})
		if err != nil {
			t.Fatal(err)
		}
		var intervals []string
		for _, g := range groups.Groups {
			intervals = append(intervals, g.Interval.String())
		}
		if got := strings.Join(intervals, " "); got != tt.intervals {
			t.Errorf("%s: intervals %s, want %s", tt.style, got, tt.intervals)
		}
		page := findGroup(groups, "slogate-x:alerts").Rules[0].Expr
		if !strings.Contains(page, `slo:sli_error:ratio_rate10m{service="shop",slo="x"} > (13.44 * 0.001)`) {
			t.Errorf("%s: page alert %s: want the SLO's own tiers", tt.style, page)
		}
	}
}

// TestCalendarRefused: a calendar SLO has no rules, and the error says why
// and what to do instead.
func TestCalendarRefused(t *testing.T) {
	set, diags := slo.Load("../testdata/definitions/calendar/calendar.yaml")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	for _, style := range rules.Styles {
		_, err := rules.Generate(set, rules.Options{Style: style})
		if !errors.Is(err, rules.ErrCalendar) || !strings.Contains(err.Error(), `calendar.yaml:3:1: slo "checkout-monthly": window month in Europe/Berlin`) {
			t.Errorf("style %s: %v, want ErrCalendar naming the SLO and where", style, err)
		}
	}
}

// TestTimeslicesRefused: a time-slice SLO has no rules, and the error says
// why and what to do instead.
func TestTimeslicesRefused(t *testing.T) {
	set, diags := slo.LoadBytes("ts.yaml", []byte(`apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: minutes}
spec:
  service: s
  objective: 99
  timeslices: {window: 1m, target: 99%}
  indicator: {ratio: {errors: 'sum(rate(e[{{.window}}]))', total: 'sum(rate(t[{{.window}}]))'}}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	if _, err := rules.Generate(set, rules.Options{}); !errors.Is(err, rules.ErrTimeslices) || !strings.Contains(err.Error(), `slo "minutes": timeslices of 1m`) {
		t.Errorf("%v, want ErrTimeslices naming the SLO", err)
	}
}

// TestGroupsRefused: a native SLO grouped with groupBy has no rules (they
// would record only the aggregate), and the error says why and what to do.
func TestGroupsRefused(t *testing.T) {
	set, diags := slo.Load("../testdata/definitions/groups/checkout.yaml")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	for _, style := range rules.Styles {
		_, err := rules.Generate(set, rules.Options{Style: style})
		if !errors.Is(err, rules.ErrGroups) || !strings.Contains(err.Error(), `checkout.yaml:3:1: slo "checkout-availability": groupBy cluster, route`) {
			t.Errorf("style %s: %v, want ErrGroups naming the SLO and where", style, err)
		}
	}
}
