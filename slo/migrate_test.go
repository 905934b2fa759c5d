package slo

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMigrateFromSlothAndOpenSLO loads the files SREs bring from Sloth (its
// Kubernetes resource, the prometheus/v1 spec with the resource's
// spellings and Sloth's plugins) and OpenSLO v1alpha, as they are: every SLO
// is read with its name, window, objective, queries, labels and alerting,
// and what slogate ignores is a warning at its place.
func TestMigrateFromSlothAndOpenSLO(t *testing.T) {
	dir := filepath.Join(definitions, "migrate")
	type want struct {
		window       time.Duration
		objective    float64
		errors, good string
		total, raw   string
		labels       map[string]string
		alert        string
		page, ticket bool
		pageSeverity string
		latency      string
		disabled     bool
	}
	tests := []struct {
		file     string
		slos     map[string]want
		warnings []string
	}{{
		file: "sloth-crd.yaml",
		slos: map[string]want{
			"Checkout-requests-availability": {
				window: 30 * 24 * time.Hour, objective: 99.9,
				errors: `sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))`,
				total:  `sum(rate(http_requests_total{job="checkout"}[{{.window}}]))`,
				// The merge key brings the service's labels; the SLO's own tier wins.
				labels: map[string]string{"owner": "shop-team", "tier": "2"},
				alert:  "checkout-high-error-rate", page: true, ticket: false, pageSeverity: "critical",
			},
			"catalog-errors": {
				window: 30 * 24 * time.Hour, objective: 99,
				raw:   `sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))`,
				alert: "CatalogErrors", page: true, ticket: true,
			},
		},
		warnings: []string{`sloth-crd.yaml:14:13: spec.sloPlugins.chain[0].id: Sloth plugin "sloth.dev/core/debug/v1" is accepted and not applied: it only logs in Sloth`},
	}, {
		file: "sloth-spellings.yaml",
		slos: map[string]want{
			"search-latency": {
				window: 30 * 24 * time.Hour, objective: 99.5,
				errors: `sum(rate(search_slow_total[{{.window}}]))`, total: `sum(rate(search_total[{{.window}}]))`,
				alert: "SearchSlow", page: true, ticket: false, pageSeverity: "critical",
			},
		},
		warnings: []string{
			`sloth-spellings.yaml:24:7: slos[0].alerting.pageAlert: read as page_alert, its spelling in a Sloth spec`,
			`sloth-spellings.yaml:25:7: slos[0].alerting.ticketAlert: read as ticket_alert, its spelling in a Sloth spec`,
			"sloth-spellings.yaml:27:18: slos[0].alerting.annotations.summary: reads Sloth's label sloth_service, which only `slogate rules --style sloth` sets; slogate's alerts carry service and slo (sloth_id is slo, sloth_service is service)",
		},
	}, {
		file: "openslo-v1alpha.yaml",
		slos: map[string]want{
			"api-availability-0": {
				window: 7 * 24 * time.Hour, objective: 99.9,
				good: `sum(rate(api_requests_total{code!~"5.."}[{{.window}}]))`, total: `sum(rate(api_requests_total[{{.window}}]))`,
				alert: DefaultAlertName, page: true, ticket: true,
			},
			"api-availability-1": {
				window: 7 * 24 * time.Hour, objective: 99,
				good: `sum(rate(api_requests_total{code!~"5.."}[{{.window}}]))`, total: `sum(rate(api_requests_total[{{.window}}]))`,
				alert: DefaultAlertName, page: true, ticket: true,
			},
		},
	}, {
		file: "openslo-v1.yaml",
		slos: map[string]want{
			"orders-availability-0": {window: 28 * 24 * time.Hour, objective: 99.9, good: `sum(rate(orders_total{code!~"5.."}[{{.window}}]))`, total: `sum(rate(orders_total[{{.window}}]))`, alert: DefaultAlertName, page: true, ticket: true},
			"orders-availability-1": {window: 28 * 24 * time.Hour, objective: 99, good: `sum(rate(orders_total{code!~"5.."}[{{.window}}]))`, total: `sum(rate(orders_total[{{.window}}]))`, alert: DefaultAlertName, page: true, ticket: true},
		},
	}, {
		file: "pyrra.yaml",
		slos: map[string]want{
			"api-errors": {
				window: 14 * 24 * time.Hour, objective: 99.5,
				errors: `sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))`, total: `sum(rate(http_requests_total{job="api"}[{{.window}}]))`,
				labels: map[string]string{"team": "web"}, alert: DefaultAlertName, page: true, ticket: true,
			},
			"api-latency": {
				window: 28 * 24 * time.Hour, objective: 95,
				good:  `sum(rate(http_request_duration_seconds_bucket{job="api",le="0.25"}[{{.window}}]))`,
				total: `sum(rate(http_request_duration_seconds_count{job="api"}[{{.window}}]))`,
				alert: "ApiSlow", page: true, ticket: true,
			},
			"api-latency-native": {
				window: 28 * 24 * time.Hour, objective: 99, latency: `http_request_duration_seconds{job="api"} < 0.3s native`,
				alert: DefaultAlertName, page: true, ticket: true, disabled: true,
			},
			"probe-up": {
				window: 28 * 24 * time.Hour, objective: 99.9, raw: `1 - avg(avg_over_time(probe_success{job="blackbox"}[{{.window}}]))`,
				alert: DefaultAlertName, page: true, ticket: true,
			},
		},
	}}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			set, diags := LoadFS(os.DirFS(dir), tt.file)
			if diags.HasErrors() {
				t.Fatalf("errors:\n%s", diags)
			}
			var warnings []string
			for _, w := range diags.Warnings() {
				warnings = append(warnings, w.Error())
			}
			if strings.Join(warnings, "\n") != strings.Join(tt.warnings, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(tt.warnings, "\n"))
			}
			if len(set.SLOs) != len(tt.slos) {
				t.Fatalf("%d SLOs, want %d", len(set.SLOs), len(tt.slos))
			}
			for _, o := range set.SLOs {
				w, ok := tt.slos[o.Name]
				if !ok {
					t.Errorf("unexpected SLO %q", o.Name)
					continue
				}
				var got want
				got.window, got.objective = o.Window, o.Objective
				if r := o.Indicator.Ratio; r != nil {
					got.errors, got.good, got.total = r.Errors, r.Good, r.Total
				}
				if r := o.Indicator.Raw; r != nil {
					got.raw = r.ErrorRatio
				}
				got.labels = o.Labels
				got.alert, got.page, got.ticket = o.Alerting.Name, o.Alerting.Page.Enabled, o.Alerting.Ticket.Enabled
				got.pageSeverity = o.Alerting.Page.Labels["severity"]
				if l := o.Indicator.Latency; l != nil {
					got.latency = fmt.Sprintf("%s < %gs", l.Histogram, l.Threshold)
					if l.Native {
						got.latency += " native"
					}
				}
				got.disabled = !o.Alerting.Enabled
				if !maps.Equal(got.labels, w.labels) || got.window != w.window || got.objective != w.objective ||
					got.errors != w.errors || got.good != w.good || got.total != w.total || got.raw != w.raw ||
					got.alert != w.alert || got.page != w.page || got.ticket != w.ticket || got.pageSeverity != w.pageSeverity ||
					got.latency != w.latency || got.disabled != w.disabled {
					t.Errorf("SLO %s:\n got %+v\nwant %+v", o.Name, got, w)
				}
			}
		})
	}
}

// TestSlothAlertWindows: Sloth's AlertWindows set the burn-rate windows and
// factors of the SLOs of their period, Sloth SLOs taking the period from
// LoadOptions.SlothPeriod (sloth.default-period), native ones from their
// window; other SLOs keep the workbook's tiers.
func TestSlothAlertWindows(t *testing.T) {
	dir := filepath.Join(definitions, "migrate")
	custom := []BurnTier{
		{Severity: SeverityPage, Long: time.Hour, Short: 5 * time.Minute, Factor: 13.44, Budget: 0.08},
		{Severity: SeverityPage, Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 3.5, Budget: 0.125},
		{Severity: SeverityTicket, Long: 24 * time.Hour, Short: 2 * time.Hour, Factor: 1.4, Budget: 0.2},
		{Severity: SeverityTicket, Long: 72 * time.Hour, Short: 6 * time.Hour, Factor: 0.98, Budget: 0.42},
	}
	week := 7 * 24 * time.Hour

	set, diags := LoadWith(LoadOptions{SlothPeriod: week}, filepath.Join(dir, "sloth-windows-7d.yaml"), filepath.Join(dir, "sloth-spellings.yaml"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	o := set.SLO("search-latency")
	if o.Window != week || !reflect.DeepEqual(o.Tiers(), custom) {
		t.Errorf("Sloth SLO with sloth.default-period 7d: window %s, tiers %+v; want 7d and %+v", o.Window, o.Tiers(), custom)
	}

	set, diags = Load(filepath.Join(dir, "sloth-windows-7d.yaml"), filepath.Join(dir, "sloth-spellings.yaml"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if o := set.SLO("search-latency"); o.Window != DefaultWindow || o.Alerting.Tiers != nil || !reflect.DeepEqual(o.Tiers(), BurnTiers(DefaultWindow)) {
		t.Errorf("Sloth SLO of 30d with 7d AlertWindows: window %s, tiers %+v; want 30d and the workbook's", o.Window, o.Tiers())
	}

	windows, err := os.ReadFile(filepath.Join(dir, "sloth-windows-7d.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	native := string(windows) + `---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: weekly}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator: {ratio: {errors: 'sum(rate(e[{{.window}}]))', total: 'sum(rate(t[{{.window}}]))'}}
`
	set, diags = LoadBytes("weekly.yaml", []byte(native))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := set.SLO("weekly").Tiers(); !reflect.DeepEqual(got, custom) {
		t.Errorf("native SLO of 7d: tiers %+v, want the AlertWindows' %+v", got, custom)
	}
}

// TestSlothPluginsApplied: rule_intervals and info_labels carry over into
// what `slogate rules` writes; overridePrevious drops the service's chain.
func TestSlothPluginsApplied(t *testing.T) {
	set, diags := Load(filepath.Join(definitions, "migrate", "sloth-spellings.yaml"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	o := set.SLO("search-latency")
	if want := (RuleIntervals{SLIError: time.Minute, Metadata: time.Minute, Alert: time.Minute}); o.RuleIntervals != want {
		t.Errorf("rule intervals %+v, want %+v", o.RuleIntervals, want)
	}
	// overridePrevious: true on the SLO's chain: the service's info_labels
	// do not apply.
	if len(o.InfoLabels) != 0 {
		t.Errorf("info labels %v, want none (overridePrevious)", o.InfoLabels)
	}

	set, diags = LoadBytes("plugins.yaml", []byte(`version: prometheus/v1
service: shop
slo_plugins:
  chain:
    - {id: sloth.dev/contrib/info_labels/v1, config: {labels: {owner: shop, tier: "1"}}}
    - {id: sloth.dev/contrib/rule_intervals/v1, priority: 5, config: {interval: {default: 2m, alert: 30s}}}
slos:
  - name: availability
    objective: 99
    plugins:
      chain:
        - {id: sloth.dev/contrib/info_labels/v1, priority: 1, config: {labels: {tier: "2"}}}
        - {id: sloth.dev/contrib/rule_intervals/v1, priority: 9, config: {interval: {default: 1m}}}
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
  - name: bad-config
    objective: 99
    plugins:
      chain:
        - {id: sloth.dev/contrib/rule_intervals/v1, config: {interval: {alert: 1m}}}
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
`))
	if got := diags.String(); got != "plugins.yaml:19:72: error: slos[1].plugins.chain[0].config.interval.default is required (Sloth requires it)\n" {
		t.Errorf("diagnostics:\n%s", got)
	}
	o = set.SLO("shop-availability")
	// By priority: the service's labels (0), then the SLO's (1); the
	// service's intervals (5), then the SLO's (9).
	if want := map[string]string{"owner": "shop", "tier": "2"}; !maps.Equal(o.InfoLabels, want) {
		t.Errorf("info labels %v, want %v", o.InfoLabels, want)
	}
	if want := (RuleIntervals{SLIError: time.Minute, Metadata: time.Minute, Alert: time.Minute}); o.RuleIntervals != want {
		t.Errorf("rule intervals %+v, want %+v", o.RuleIntervals, want)
	}
}
