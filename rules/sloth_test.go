package rules_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

var slothErrorsIndicator = slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `sum(rate(x{code="500"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}}

func slothGenerate(t *testing.T, slos ...*slo.SLO) *rulefmt.RuleGroups {
	t.Helper()
	groups, err := rules.Generate(&slo.Set{SLOs: slos}, rules.Options{Style: rules.StyleSloth})
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

func findRule(g *rulefmt.RuleGroup, record string) *rulefmt.Rule {
	if g == nil {
		return nil
	}
	for i := range g.Rules {
		if g.Rules[i].Record == record {
			return &g.Rules[i]
		}
	}
	return nil
}

// TestSlothNames: sloth_id is <service>-<name> (for Sloth SLOs, the name
// slogate gives them), sloth_slo the name in the Sloth spec or slogate's,
// and the groups carry Sloth's prefixes.
func TestSlothNames(t *testing.T) {
	tests := []struct {
		name            string
		source          slo.Source
		service         string
		wantID, wantSLO string
		spec, mode      string
	}{
		{name: "myservice-requests", source: slo.Source{Format: slo.FormatSloth, Name: "requests"}, service: "myservice",
			wantID: "myservice-requests", wantSLO: "requests", spec: "prometheus/v1", mode: "cli-gen-prom"},
		{name: "myservice-requests", source: slo.Source{Format: slo.FormatSlothCRD, Name: "requests"}, service: "myservice",
			wantID: "myservice-requests", wantSLO: "requests", spec: "sloth.slok.dev/v1", mode: "cli-gen-k8s"},
		{name: "requests", source: slo.Source{Format: slo.FormatNative}, service: "myservice",
			wantID: "myservice-requests", wantSLO: "requests", spec: "slogate.dev/v1", mode: "cli-gen-prom"},
		// A Sloth SLO after `slogate convert`: native, named <service>-<name>;
		// it keeps the id and series it had.
		{name: "myservice-requests", source: slo.Source{Format: slo.FormatNative}, service: "myservice",
			wantID: "myservice-requests", wantSLO: "requests", spec: "slogate.dev/v1", mode: "cli-gen-prom"},
		{name: "avail-0", source: slo.Source{Format: slo.FormatOpenSLOv1alpha}, service: "web",
			wantID: "web-avail-0", wantSLO: "avail-0", spec: "openslo/v1alpha", mode: "cli-gen-openslo"},
		{name: "avail", source: slo.Source{Format: slo.FormatOpenSLO}, service: "web",
			wantID: "web-avail", wantSLO: "avail", spec: "openslo/v1", mode: "cli-gen-openslo"},
		{name: "built-in-code", service: "web",
			wantID: "web-built-in-code", wantSLO: "built-in-code", spec: "slogate.dev/v1", mode: "cli-gen-prom"},
	}
	for _, tt := range tests {
		t.Run(string(tt.source.Format)+" "+tt.name, func(t *testing.T) {
			o := ratioSLO(tt.name, slothErrorsIndicator)
			o.Service, o.Source = tt.service, tt.source
			if got := rules.SlothID(o); got != tt.wantID {
				t.Errorf("SlothID %q, want %q", got, tt.wantID)
			}
			groups := slothGenerate(t, o)
			var names []string
			for _, g := range groups.Groups {
				names = append(names, g.Name)
			}
			want := []string{"sloth-slo-sli-recordings-" + tt.wantID, "sloth-slo-meta-recordings-" + tt.wantID, "sloth-slo-alerts-" + tt.wantID}
			if !slices.Equal(names, want) {
				t.Fatalf("groups %v, want %v", names, want)
			}
			info := findRule(&groups.Groups[1], rules.SlothInfoMetric)
			wantInfo := map[string]string{
				"sloth_id": tt.wantID, "sloth_service": tt.service, "sloth_slo": tt.wantSLO,
				"sloth_spec": tt.spec, "sloth_mode": tt.mode, "sloth_objective": "99.9", "sloth_version": rules.SlothVersion,
			}
			if info == nil || !maps.Equal(info.Labels, wantInfo) {
				t.Errorf("sloth_slo_info %+v, want labels %v", info, wantInfo)
			}
		})
	}
}

// TestSlothIDCollision: two SLOs with one sloth_id would share their
// series and groups.
func TestSlothIDCollision(t *testing.T) {
	a := ratioSLO("b", slothErrorsIndicator)
	a.Service = "a-x"
	b := ratioSLO("a-x-b", slothErrorsIndicator)
	b.Service, b.Source = "a", slo.Source{Format: slo.FormatSloth, Name: "x-b"}
	b.Name = "a-x-b"
	_, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{a, b}}, rules.Options{Style: rules.StyleSloth})
	if err == nil || !strings.Contains(err.Error(), `slo "b" and slo "a-x-b" both have the sloth_id "a-x-b"`) {
		t.Fatalf("err %v, want the collision named", err)
	}
	if _, err := rules.Generate(&slo.Set{SLOs: []*slo.SLO{a, b}}, rules.Options{Style: rules.StyleWindows}); err != nil {
		t.Errorf("windows style: %v", err)
	}
}

// TestSlothIndicators pins the SLI of every indicator kind: Sloth's
// events and raw forms with the queries as written, good events (and
// classic latency) as the raw 1 - good/total Sloth writes for OpenSLO.
func TestSlothIndicators(t *testing.T) {
	tests := []struct {
		name string
		ind  slo.Indicator
		want string
	}{
		{
			name: "errors",
			ind:  slo.Indicator{Ratio: &slo.RatioIndicator{Errors: `rate(x{code="500"}[{{.window}}])`, Total: `sum(rate(x[{{ .window }}]))`}},
			want: `(rate(x{code="500"}[1h])) / (sum(rate(x[1h])))`,
		},
		{
			name: "good",
			ind:  slo.Indicator{Ratio: &slo.RatioIndicator{Good: `sum(rate(x{code="200"}[{{.window}}]))`, Total: `sum(rate(x[{{.window}}]))`}},
			want: `(1 - ((sum(rate(x{code="200"}[1h]))) / (sum(rate(x[1h])))))`,
		},
		{
			name: "raw",
			ind:  slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up{job="a"}[{{.window}}])`}},
			want: `(1 - avg_over_time(up{job="a"}[1h]))`,
		},
		{
			name: "classic latency",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `h_seconds{job="a"}`, Threshold: 0.25}},
			want: `(1 - ((sum(rate(h_seconds_bucket{job="a",le=~"0\\.25"}[1h]))) / (sum(rate(h_seconds_count{job="a"}[1h])))))`,
		},
		{
			name: "native latency",
			ind:  slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `h_seconds{job="a"}`, Threshold: 0.3, Native: true}},
			want: `(1 - histogram_fraction(0, 0.3, sum(rate(h_seconds{job="a"}[1h]))))`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := slothGenerate(t, ratioSLO("x", tt.ind))
			r := findRule(&groups.Groups[0], rules.SLIErrorMetric(time.Hour))
			if r == nil {
				t.Fatal("no 1h rule")
			}
			if r.Expr != tt.want {
				t.Errorf("got  %s\nwant %s", r.Expr, tt.want)
			}
		})
	}
}

// TestSlothWindowsAndFactors: the recorded windows and the thresholds
// follow the SLO's tiers (Sloth's AlertWindows) with Sloth's arithmetic,
// digits included.
func TestSlothWindowsAndFactors(t *testing.T) {
	day := 24 * time.Hour
	o := ratioSLO("x", slothErrorsIndicator)
	o.Window = 7 * day
	// examples/windows/7d.yaml of Sloth's repository, as the loader reads it.
	o.Alerting.Tiers = []slo.BurnTier{
		{Severity: slo.SeverityPage, Short: 5 * time.Minute, Long: time.Hour, Budget: 0.08, Factor: 13.44},
		{Severity: slo.SeverityPage, Short: 30 * time.Minute, Long: 6 * time.Hour, Budget: 0.125, Factor: 3.5},
		{Severity: slo.SeverityTicket, Short: 2 * time.Hour, Long: day, Budget: 0.2, Factor: 1.4},
		{Severity: slo.SeverityTicket, Short: 6 * time.Hour, Long: 3 * day, Budget: 0.42, Factor: 0.98},
	}
	groups := slothGenerate(t, o)
	var windows []string
	for _, r := range groups.Groups[0].Rules {
		windows = append(windows, r.Labels["sloth_window"])
	}
	if got := strings.Join(windows, " "); got != "5m 30m 1h 2h 6h 1d 3d 1w" {
		t.Errorf("windows %s, want 5m 30m 1h 2h 6h 1d 3d 1w", got)
	}
	period := groups.Groups[0].Rules[len(groups.Groups[0].Rules)-1]
	if !strings.HasPrefix(period.Expr, `sum_over_time(slo:sli_error:ratio_rate5m{sloth_id="shop-x",sloth_service="shop",sloth_slo="x"}[1w])`) {
		t.Errorf("period rule %s: want the 5m ratios averaged over the week", period.Expr)
	}
	if r := findRule(&groups.Groups[1], rules.TimePeriodMetric); r == nil || r.Expr != "vector(7)" {
		t.Errorf("time period rule %+v, want vector(7)", r)
	}
	alerts := groups.Groups[2].Rules
	// 20 % of 168 hours over 24 hours is 1.4000000000000001 in Sloth's
	// float arithmetic, and so in its rules.
	for i, want := range [][]string{
		{"(13.44 * 0.0009999999999999432)", "(3.5 * 0.0009999999999999432)"},
		{"(1.4000000000000001 * 0.0009999999999999432)", "(0.98 * 0.0009999999999999432)"},
	} {
		for _, w := range want {
			if !strings.Contains(alerts[i].Expr, w) {
				t.Errorf("alert %d %s: no threshold %s", i, alerts[i].Expr, w)
			}
		}
	}
}

// TestSlothPeriodAmongWindows: a period that is one of the alert windows
// (1d, the ticket alerts' long window) is recorded once, from the quick
// window's ratios, as Sloth records the period.
func TestSlothPeriodAmongWindows(t *testing.T) {
	o := ratioSLO("x", slothErrorsIndicator)
	o.Window = 24 * time.Hour
	groups := slothGenerate(t, o)
	var windows []string
	for _, r := range groups.Groups[0].Rules {
		windows = append(windows, r.Labels["sloth_window"])
	}
	if got := strings.Join(windows, " "); got != "5m 30m 1h 2h 6h 1d 3d" {
		t.Errorf("windows %s, want 5m 30m 1h 2h 6h 1d 3d", got)
	}
	if r := findRule(&groups.Groups[0], rules.SLIErrorMetric(24*time.Hour)); r == nil || !strings.HasPrefix(r.Expr, "sum_over_time(") {
		t.Errorf("1d rule %+v: want the 5m ratios averaged", r)
	}
}

// TestSlothPlugins: Sloth's rule_intervals and info_labels, as the loader
// keeps them, set the groups' intervals and label sloth_slo_info; labels
// of the SLO and the alerts merge the way Sloth merges them.
func TestSlothPlugins(t *testing.T) {
	o := ratioSLO("x", slothErrorsIndicator)
	o.RuleIntervals = slo.RuleIntervals{SLIError: time.Minute, Metadata: 5 * time.Minute, Alert: 30 * time.Second}
	o.InfoLabels = map[string]string{"owner": "payments", "sloth_version": "v0.16.0"}
	o.Labels = map[string]string{"team": "pay"}
	o.Alerting.Name = "ShopBurn"
	o.Alerting.Labels = map[string]string{"route": "shop", "severity": "critical"}
	o.Alerting.Annotations = map[string]string{"summary": "mine"}
	o.Alerting.Ticket.Labels = map[string]string{"severity": "warning", "sloth_severity": "low"}
	o.Alerting.Ticket.Annotations = map[string]string{"title": "ticket"}
	groups := slothGenerate(t, o)
	var intervals []string
	for _, g := range groups.Groups {
		intervals = append(intervals, g.Interval.String())
	}
	if got := strings.Join(intervals, " "); got != "1m 5m 30s" {
		t.Errorf("intervals %s, want 1m 5m 30s", got)
	}
	info := findRule(&groups.Groups[1], rules.SlothInfoMetric)
	if info.Labels["owner"] != "payments" || info.Labels["sloth_version"] != "v0.16.0" || info.Labels["team"] != "pay" {
		t.Errorf("sloth_slo_info labels %v: want the info labels (winning) and the SLO's", info.Labels)
	}
	if l := groups.Groups[0].Rules[0].Labels; l["team"] != "pay" || l["sloth_window"] != "5m" {
		t.Errorf("SLI labels %v", l)
	}
	page, ticket := groups.Groups[2].Rules[0], groups.Groups[2].Rules[1]
	if want := map[string]string{"route": "shop", "severity": "critical", "sloth_severity": "page"}; page.Alert != "ShopBurn" || !maps.Equal(page.Labels, want) {
		t.Errorf("page %s %v, want ShopBurn %v", page.Alert, page.Labels, want)
	}
	if want := map[string]string{"route": "shop", "severity": "warning", "sloth_severity": "low"}; !maps.Equal(ticket.Labels, want) {
		t.Errorf("ticket labels %v, want %v", ticket.Labels, want)
	}
	if page.Annotations["summary"] != "mine" || !strings.HasPrefix(page.Annotations["title"], "(page) {{$labels.sloth_service}}") {
		t.Errorf("page annotations %v", page.Annotations)
	}
	if ticket.Annotations["title"] != "ticket" {
		t.Errorf("ticket annotations %v", ticket.Annotations)
	}
}

// TestSlothAlertsApart: Sloth's alerting rules carry no SLO labels (the
// series bring them), so two SLOs with one alert name give rules promtool
// calls duplicates; those, and only those, get the SLO's labels.
func TestSlothAlertsApart(t *testing.T) {
	a, b, c := ratioSLO("a", slothErrorsIndicator), ratioSLO("b", slothErrorsIndicator), ratioSLO("c", slothErrorsIndicator)
	c.Alerting.Name = "Other"
	groups := slothGenerate(t, a, b, c)
	for _, tt := range []struct {
		group string
		ids   bool
	}{{"sloth-slo-alerts-shop-a", true}, {"sloth-slo-alerts-shop-b", true}, {"sloth-slo-alerts-shop-c", false}} {
		g := findGroup(groups, tt.group)
		for _, r := range g.Rules {
			_, has := r.Labels["sloth_id"]
			if has != tt.ids {
				t.Errorf("%s %s labels %v: sloth_id there %v, want %v", tt.group, r.Alert, r.Labels, has, tt.ids)
			}
			if has && (r.Labels["sloth_slo"] != strings.TrimPrefix(tt.group, "sloth-slo-alerts-shop-") || r.Labels["sloth_service"] != "shop") {
				t.Errorf("%s labels %v", tt.group, r.Labels)
			}
		}
	}
}

// TestSlothNoAlerts: no alerting group when the SLO does not alert, as
// Sloth leaves out empty groups.
func TestSlothNoAlerts(t *testing.T) {
	o := ratioSLO("x", slothErrorsIndicator)
	o.Alerting.Page.Enabled, o.Alerting.Ticket.Enabled = false, false
	if n := len(slothGenerate(t, o).Groups); n != 2 {
		t.Errorf("%d groups, want 2", n)
	}
	o.Alerting.Ticket.Enabled = true
	groups := slothGenerate(t, o)
	if len(groups.Groups) != 3 || len(groups.Groups[2].Rules) != 1 || groups.Groups[2].Rules[0].Labels["sloth_severity"] != "ticket" {
		t.Errorf("ticket only: %+v", groups.Groups)
	}
}
