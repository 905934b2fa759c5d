package slo

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupedFormatsLoad loads the grouped fixtures of every format as one
// set: no diagnostic, and each SLO grouped by the labels its file says.
func TestGroupedFormatsLoad(t *testing.T) {
	set, diags := Load(filepath.Join(definitions, "groups"))
	if len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	tests := []struct {
		slo       string
		format    Format
		by        []string
		maxGroups int
	}{
		{"checkout-availability", FormatNative, []string{"cluster", "route"}, 50},
		{"web-errors", FormatPyrra, []string{"cluster", "route"}, 0},
		{"web-latency", FormatPyrra, []string{"route"}, 0},
		{"web-latency-native", FormatPyrra, []string{"cluster"}, 0},
		{"web-up", FormatPyrra, []string{"instance"}, 0},
		{"web-total", FormatPyrra, nil, 0},
		// The error query's order, though the total query lists them
		// the other way round.
		{"store-availability", FormatSloth, []string{"cluster", "route"}, 0},
		{"store-latency", FormatSloth, []string{"cluster"}, 0},
		{"store-aggregate", FormatSloth, nil, 0},
		{"cart-availability", FormatSlothCRD, []string{"cluster"}, 0},
	}
	if len(set.SLOs) != len(tests) {
		t.Errorf("%d SLOs loaded, want %d", len(set.SLOs), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.slo, func(t *testing.T) {
			o := set.SLO(tt.slo)
			if o == nil {
				t.Fatal("not loaded")
			}
			if o.Source.Format != tt.format {
				t.Errorf("format %q, want %q", o.Source.Format, tt.format)
			}
			if !slices.Equal(o.GroupBy, tt.by) {
				t.Errorf("GroupBy %q, want %q", o.GroupBy, tt.by)
			}
			if o.Grouped() != (tt.by != nil) {
				t.Errorf("Grouped() = %v", o.Grouped())
			}
			if o.MaxGroups != tt.maxGroups {
				t.Errorf("MaxGroups %d, want %d (only the native format sets it)", o.MaxGroups, tt.maxGroups)
			}
		})
	}
}

// TestPyrraGrouping: grouping on each of Pyrra's indicators is the SLO's
// GroupBy, checked like spec.groupBy, with the field's path and place.
func TestPyrraGrouping(t *testing.T) {
	doc := func(indicator string) string {
		return "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: p, namespace: n}\n" +
			"spec:\n  target: \"99\"\n  window: 4w\n  indicator:\n" + indicator
	}
	ratio := func(grouping string) string {
		return doc("    ratio:\n      errors: {metric: 'e_total'}\n      total: {metric: 't_total'}\n" + grouping)
	}
	tests := []struct {
		name, src string
		by        []string
		diags     string
	}{
		{name: "ratio", src: ratio("      grouping: [cluster, route]\n"), by: []string{"cluster", "route"}},
		{name: "ratio, block list", src: ratio("      grouping:\n        - route\n        - cluster\n"), by: []string{"route", "cluster"}},
		{
			name: "latency",
			src:  doc("    latency:\n      success: {metric: 'h_bucket{le=\"1\"}'}\n      total: {metric: 'h_count'}\n      grouping: [zone]\n"),
			by:   []string{"zone"},
		},
		{
			name: "latencyNative",
			src:  doc("    latencyNative:\n      latency: 1s\n      total: {metric: 'h'}\n      grouping: [zone]\n"),
			by:   []string{"zone"},
		},
		{name: "bool_gauge", src: doc("    bool_gauge:\n      metric: up\n      grouping: [instance]\n"), by: []string{"instance"}},
		{name: "no grouping", src: ratio("")},
		{name: "empty grouping, as Pyrra writes it", src: ratio("      grouping: []\n")},
		{name: "null grouping", src: ratio("      grouping:\n")},
		{
			name:  "reserved label",
			src:   ratio("      grouping: [cluster, service]\n"),
			diags: "p.yaml:11:27: error: spec.indicator.ratio.grouping[1]: label name \"service\" is reserved: slogate sets it itself\n",
		},
		{
			name:  "label twice",
			src:   ratio("      grouping: [cluster, cluster]\n"),
			diags: "p.yaml:11:27: error: spec.indicator.ratio.grouping[1]: label \"cluster\" is listed twice\n",
		},
		{
			name:  "invalid label name",
			src:   ratio("      grouping: [\"1st\"]\n"),
			diags: "p.yaml:11:18: error: spec.indicator.ratio.grouping[0]: invalid label name \"1st\": use letters, digits and '_', not starting with a digit\n",
		},
		{
			name:  "a string, not a list",
			src:   ratio("      grouping: cluster\n"),
			diags: "p.yaml:11:17: error: spec.indicator.ratio.grouping: expected a list, got \"cluster\"\n",
		},
		{
			name:  "a null item",
			src:   ratio("      grouping: [cluster, ~]\n"),
			diags: "p.yaml:11:17: error: spec.indicator.ratio.grouping[1]: expected a label name, got null\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := LoadBytes("p.yaml", []byte(tt.src))
			if got := diags.String(); got != tt.diags {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", got, tt.diags)
			}
			o := set.SLO("p")
			if o == nil {
				t.Fatal("SLO p not loaded")
			}
			if !slices.Equal(o.GroupBy, tt.by) {
				t.Errorf("GroupBy %q, want %q", o.GroupBy, tt.by)
			}
		})
	}
}

// TestSlothGroupBy: a Sloth SLO is grouped when both its event queries
// aggregate by the same labels at their top; queries grouped differently
// are a warning at the query, and the SLO is the aggregate alone.
func TestSlothGroupBy(t *testing.T) {
	file := func(errQ, totalQ string) string {
		return "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli:\n      events:\n" +
			"        error_query: '" + errQ + "'\n        total_query: '" + totalQ + "'\n"
	}
	const (
		e = `rate(e_total[{{.window}}])`
		r = `rate(t_total[{{.window}}])`
	)
	fix := func(by string) string {
		return "the SLO is evaluated as one aggregate, not one SLO per group; aggregate both queries by the same labels, like sum by " +
			by + " (rate(...)), for one SLO per group, or neither for the aggregate alone"
	}
	tests := []struct {
		name, src string
		by        []string
		diags     string
	}{
		{name: "sum by", src: file(`sum by (cluster) (`+e+`)`, `sum by (cluster) (`+r+`)`), by: []string{"cluster"}},
		{name: "by after the arguments", src: file(`sum(`+e+`) by (cluster, route)`, `sum(`+r+`) by (cluster, route)`), by: []string{"cluster", "route"}},
		{name: "the error query's order", src: file(`sum by (route, cluster) (`+e+`)`, `sum by (cluster, route) (`+r+`)`), by: []string{"route", "cluster"}},
		{name: "parentheses", src: file(`((sum by (zone) (`+e+`)))`, `(sum by (zone) (`+r+`))`), by: []string{"zone"}},
		{name: "other aggregations", src: file(`max by (zone) (`+e+`)`, `avg by (zone) (`+r+`)`), by: []string{"zone"}},
		{
			name: "count minus fast, as Sloth's latency SLOs",
			src:  file(`sum by (zone) (rate(h_count[{{.window}}])) - sum by (zone) (rate(h_bucket{le="0.3"}[{{.window}}]))`, `sum by (zone) (rate(h_count[{{.window}}]))`),
			by:   []string{"zone"},
		},
		{name: "times a number", src: file(`60 * sum by (zone) (`+e+`)`, `sum by (zone) (`+r+`) / 1`), by: []string{"zone"}},
		{name: "not grouped", src: file(`sum(`+e+`)`, `sum(`+r+`)`)},
		{name: "by nothing", src: file(`sum by () (`+e+`)`, `sum by () (`+r+`)`)},
		{name: "without, in both", src: file(`sum without (instance) (`+e+`)`, `sum without (instance) (`+r+`)`)},
		{name: "grouped only inside", src: file(`count(sum by (zone) (`+e+`))`, `count(sum by (zone) (`+r+`))`)},
		{
			name:  "different labels",
			src:   file(`sum by (cluster) (`+e+`)`, `sum by (cluster, route) (`+r+`)`),
			diags: "s.yaml:9:22: warning: slos[0].sli.events.total_query: aggregated by (cluster, route), but error_query by (cluster): the groups differ, so " + fix("(cluster)") + "\n",
		},
		{
			name:  "only the total grouped",
			src:   file(`sum(`+e+`)`, `sum by (zone) (`+r+`)`),
			diags: "s.yaml:8:22: warning: slos[0].sli.events.error_query: not aggregated by labels, while total_query is, by (zone): the groups differ, so " + fix("(zone)") + "\n",
		},
		{
			name:  "only the errors grouped",
			src:   file(`sum by (zone) (`+e+`)`, `sum(`+r+`)`),
			diags: "s.yaml:9:22: warning: slos[0].sli.events.total_query: not aggregated by labels, while error_query is, by (zone): the groups differ, so " + fix("(zone)") + "\n",
		},
		{
			name:  "group_left adds labels",
			src:   file(`sum by (zone) (`+e+`) * on (zone) group_left (region) sum by (zone) (`+r+`)`, `sum by (zone) (`+r+`)`),
			diags: "s.yaml:8:22: warning: slos[0].sli.events.error_query: not aggregated by labels, while total_query is, by (zone): the groups differ, so " + fix("(zone)") + "\n",
		},
		{
			name:  "a reserved label",
			src:   file(`sum by (zone, window) (`+e+`)`, `sum by (window, zone) (`+r+`)`),
			diags: "s.yaml:8:22: error: slos[0].sli.events.error_query: aggregated by (zone, window), which makes one SLO per group, but label name \"window\" is reserved: slogate sets it itself; aggregate by other labels, or by none for the aggregate alone\n",
		},
		{
			name:  "a label twice",
			src:   file(`sum by (zone, zone) (`+e+`)`, `sum by (zone, zone) (`+r+`)`),
			diags: "s.yaml:8:22: error: slos[0].sli.events.error_query: aggregated by (zone, zone), which makes one SLO per group, but label \"zone\" is listed twice; aggregate by other labels, or by none for the aggregate alone\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := LoadBytes("s.yaml", []byte(tt.src))
			if got := diags.String(); got != tt.diags {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", got, tt.diags)
			}
			o := set.SLO("s-a")
			if o == nil {
				t.Fatal("SLO s-a not loaded")
			}
			if !slices.Equal(o.GroupBy, tt.by) {
				t.Errorf("GroupBy %q, want %q", o.GroupBy, tt.by)
			}
		})
	}
}

// TestSlothCRDGroupBy: the Kubernetes resource is grouped the same way,
// and its messages use its spellings.
func TestSlothCRDGroupBy(t *testing.T) {
	crd := func(errQ, totalQ string) string {
		return "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: k}\nspec:\n  service: s\n  slos:\n" +
			"    - name: a\n      objective: 99\n      sli:\n        events:\n" +
			"          errorQuery: '" + errQ + "'\n          totalQuery: '" + totalQ + "'\n"
	}
	tests := []struct {
		name, src string
		by        []string
		diags     string
	}{
		{
			name: "grouped",
			src:  crd(`sum by (cluster) (rate(e[{{.window}}]))`, `sum by (cluster) (rate(t[{{.window}}]))`),
			by:   []string{"cluster"},
		},
		{
			name: "different labels",
			src:  crd(`sum by (cluster) (rate(e[{{.window}}]))`, `sum by (zone) (rate(t[{{.window}}]))`),
			diags: "k.yaml:12:23: warning: spec.slos[0].sli.events.totalQuery: aggregated by (zone), but errorQuery by (cluster): the groups differ, so the SLO is evaluated as one aggregate, " +
				"not one SLO per group; aggregate both queries by the same labels, like sum by (cluster) (rate(...)), for one SLO per group, or neither for the aggregate alone\n",
		},
		{
			name: "reserved",
			src:  crd(`sum by (slo) (rate(e[{{.window}}]))`, `sum by (slo) (rate(t[{{.window}}]))`),
			diags: "k.yaml:11:23: error: spec.slos[0].sli.events.errorQuery: aggregated by (slo), which makes one SLO per group, but label name \"slo\" is reserved: slogate sets it itself; " +
				"aggregate by other labels, or by none for the aggregate alone\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := LoadBytes("k.yaml", []byte(tt.src))
			if got := diags.String(); got != tt.diags {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", got, tt.diags)
			}
			o := set.SLO("s-a")
			if o == nil {
				t.Fatal("SLO s-a not loaded")
			}
			if !slices.Equal(o.GroupBy, tt.by) {
				t.Errorf("GroupBy %q, want %q", o.GroupBy, tt.by)
			}
		})
	}
}

// TestSlothGroupUnlessBroken: a query the loader refused, or two identical
// queries, are not looked at for groups (their error is enough).
func TestSlothGroupUnlessBroken(t *testing.T) {
	src := "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli:\n      events:\n" +
		"        error_query: 'sum by (zone) (rate(t[{{.window}}]))'\n        total_query: 'sum by (zone) (rate(t[{{.window}}]))'\n" +
		"  - name: b\n    objective: 99\n    sli:\n      events:\n" +
		"        error_query: 'sum by (zone) (rate(e[{{.window}}])'\n        total_query: 'sum by (route) (rate(t[{{.window}}]))'\n"
	set, diags := LoadBytes("s.yaml", []byte(src))
	if len(diags.Warnings()) != 0 || len(diags.Errors()) != 2 {
		t.Fatalf("want two errors and no warning, got:\n%s", diags)
	}
	for _, name := range []string{"s-a", "s-b"} {
		if o := set.SLO(name); o == nil || o.GroupBy != nil {
			t.Errorf("%s: %+v, want loaded and not grouped", name, o)
		}
	}
}

// TestGroupedFormatsPerGroup: the SLO of one group of a grouped Sloth SLO
// keeps the query's own grouping and selects the group's series; its
// groups are found from the total query's selectors.
func TestGroupedFormatsPerGroup(t *testing.T) {
	set, diags := Load(filepath.Join(definitions, "groups", "sloth.yaml"))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	o := set.SLO("store-availability")
	g, err := o.ForGroup(map[string]string{"cluster": "eu", "route": "/pay"})
	if err != nil {
		t.Fatal(err)
	}
	want := `sum by (cluster, route) (rate(http_requests_total{cluster="eu",code=~"5..",job="store",route="/pay"}[{{.window}}]))`
	if g.Indicator.Ratio.Errors != want {
		t.Errorf("errors of the group\n got %s\nwant %s", g.Indicator.Ratio.Errors, want)
	}
	q, err := o.DiscoveryQuery(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := `group by (cluster, route) (last_over_time(http_requests_total{job="store"}[1h]))`; q != want {
		t.Errorf("discovery\n got %s\nwant %s", q, want)
	}
}

// TestGroupedFormatsConvert: `slogate convert` writes a grouped Pyrra or
// Sloth SLO as native groupBy, and the output loads back the same.
func TestGroupedFormatsConvert(t *testing.T) {
	tests := []struct {
		file string
		want []string // in the output
	}{
		{"pyrra.yaml", []string{"name: web-errors", "groupBy: [cluster, route]", "groupBy: [instance]"}},
		{"sloth.yaml", []string{"name: store-availability", "groupBy: [cluster, route]", "groupBy: [cluster]",
			`errors: sum by (cluster, route) (rate(http_requests_total{job="store",code=~"5.."}[{{.window}}]))`}},
		{"sloth-crd.yaml", []string{"name: cart-availability", "groupBy: [cluster]"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			set, diags := Load(filepath.Join(definitions, "groups", tt.file))
			if len(diags) != 0 {
				t.Fatal(diags)
			}
			out := string(roundTrip(t, set))
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if n := strings.Count(out, "groupBy:"); n != countGrouped(set) {
				t.Errorf("%d groupBy in the output, want %d:\n%s", n, countGrouped(set), out)
			}
		})
	}
}

func countGrouped(set *Set) int {
	n := 0
	for _, o := range set.SLOs {
		if o.Grouped() {
			n++
		}
	}
	return n
}

func TestTopGrouping(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`sum by (a, b) (rate(x[{{.window}}]))`, []string{"a", "b"}},
		{`sum(rate(x[{{ .window }}])) by (b, a)`, []string{"b", "a"}},
		{`(sum by (a) (x))`, []string{"a"}},
		{`sum by (a) (x) / sum by (a) (y)`, []string{"a"}},
		{`sum by (a, b) (x) - on (a) sum by (b, a) (y)`, []string{"a", "b"}},
		{`sum by (a) (x) or sum by (a) (y)`, []string{"a"}},
		{`2 * (sum by (a) (x))`, []string{"a"}},
		{`sum by (a) (x) - sum by (b) (y)`, nil},
		{`sum by (a) (x) - sum(y)`, nil},
		{`sum by (a) (x) * on (a) group_left (c) sum by (a) (y)`, nil},
		{`sum without (a) (x)`, nil},
		{`sum(x)`, nil},
		{`rate(x[5m])`, nil},
		{`1 + 1`, nil},
		{`abs(sum by (a) (x))`, nil},
		{`sum by (a) (`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := topGrouping(tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("topGrouping = %q, want %q", got, tt.want)
			}
		})
	}
}
