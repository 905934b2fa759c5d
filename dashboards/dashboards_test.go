package dashboards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/notifier"
	"github.com/slogate/slogate/evaluator/store"
)

// wantUIDs pins every dashboard's uid: links, bookmarks and other
// dashboards' data links use them, so changing one is a breaking change
// that has to show up here.
var wantUIDs = map[string]string{
	"slo-overview.json": "slogate-slo-overview",
	"slo-detail.json":   "slogate-slo-detail",
	"chaos-gates.json":  "slogate-chaos-gates",
}

// datasourceUID is the uid provisioning/datasources/slogate.yml gives the
// Prometheus datasource, and the default of every dashboard's DS_PROMETHEUS.
const datasourceUID = "slogate-prometheus"

// dsVariable is the datasource every panel, target, annotation and
// variable query must use, so that one drop-down switches a whole dashboard.
const dsVariable = "${DS_PROMETHEUS}"

// slogateMetrics are the metric families slogate exports (DESIGN.md,
// "Exported metrics"; README.md, "Metrics"; evaluator/metrics.go,
// evaluator/chaos/runs.go, evaluator/notifier/metrics.go, app/reload.go,
// cmd/slogate/serve.go). A dashboard query may use nothing else but
// Prometheus's own series, so a misspelled name fails here.
var slogateMetrics = []string{
	"slogate_slo_info",
	"slogate_slo_objective_ratio",
	"slogate_slo_sli_ratio",
	"slogate_slo_burn_rate",
	"slogate_slo_error_budget_remaining_ratio",
	"slogate_slo_error_budget_exhaustion_seconds",
	"slogate_slo_error_budget_forecast_ratio",
	"slogate_slo_period_start_timestamp_seconds",
	"slogate_slo_period_end_timestamp_seconds",
	"slogate_slo_period_remaining_seconds",
	"slogate_slo_alert_firing",
	"slogate_slo_alert_low_traffic",
	"slogate_slo_data_fresh",
	"slogate_slo_groups",
	"slogate_slo_groups_limited",
	"slogate_hypothesis_verdict",
	"slogate_probe_value",
	"slogate_probe_within_tolerance",
	"slogate_probe_baseline",
	"slogate_probe_events",
	"slogate_gate_open",
	"slogate_run_active",
	"slogate_runs_total",
	"slogate_query_failures_total",
	"slogate_slice_buffer_bytes",
	"slogate_evaluation_iterations_missed_total",
	"slogate_last_successful_evaluation_timestamp_seconds",
	"slogate_config_last_reload_successful",
	"slogate_config_last_reload_success_timestamp_seconds",
	"slogate_build_info",
	"slogate_alerts_sent_total",
	"slogate_alerts_dropped_total",
	"slogate_alerts_queue_length",
}

// slogateHistograms are classic histograms: queries use their _bucket,
// _sum and _count series.
var slogateHistograms = []string{
	"slogate_query_duration_seconds",
	"slogate_evaluation_duration_seconds",
}

// prometheusMetrics are the series Prometheus adds to every scrape.
var prometheusMetrics = []string{
	"up",
	"scrape_duration_seconds",
	"scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling",
	"scrape_series_added",
}

func allowedMetrics() map[string]bool {
	m := map[string]bool{}
	for _, n := range slices.Concat(slogateMetrics, prometheusMetrics) {
		m[n] = true
	}
	for _, h := range slogateHistograms {
		// The bare name too: a native histogram has no suffixes.
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			m[h+suffix] = true
		}
	}
	return m
}

// testValues replace the template variables in queries. They are the
// names the end-to-end test's definitions use, so that the same
// substitution serves the parse check and the queries against Prometheus.
var testValues = map[string]string{
	"DS_PROMETHEUS":   datasourceUID,
	"service":         "shop",
	"team":            "web",
	"slo":             "shop-availability",
	"experiment":      "break-shop",
	"hypothesis":      "shop-steady",
	"__range":         "5m",
	"__range_s":       "300",
	"__range_ms":      "300000",
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__interval_ms":   "15000",
}

// The parts of Grafana's dashboard JSON that the tests check.
type dashboard struct {
	file          string
	raw           []byte
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	X, Y, W, H int
}

type panel struct {
	ID         *int           `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    *gridPos       `json:"gridPos"`
	Targets    []target       `json:"targets"`
	// Panels are the children of a collapsed row.
	Panels []panel `json:"panels"`
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// queryString is the variable's query, which Grafana stores as a string
// (the classic form) or as an object with a "query" field.
func (v variable) queryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type annotation struct {
	Name       string         `json:"name"`
	Datasource *datasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`
	Target     *struct {
		Expr string `json:"expr"`
	} `json:"target"`
}

func (a annotation) expr() string {
	if a.Target != nil && a.Target.Expr != "" {
		return a.Target.Expr
	}
	return a.Expr
}

// loadDashboards reads every *.json in the package directory.
func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards (*.json) found")
	}
	sort.Strings(files)
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: f, raw: b}
		if err := json.Unmarshal(b, d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows: a collapsed row keeps its children inside.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// query is one PromQL expression of a dashboard and where it is.
type query struct {
	where string
	expr  string
	// template is expr as the dashboard has it; values replaced its
	// variables. The end-to-end test substitutes other values too.
	template string
	values   map[string]string
	// label is set for a variable's label_values(expr, label): the test
	// against Prometheus asks for the label's values, not for samples.
	label string
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// queries lists every PromQL expression of d: panel targets, annotations
// and the selectors of query variables.
func (d *dashboard) queries() ([]query, error) {
	var out []query
	var errs []error
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{where: fmt.Sprintf("%s: panel %q target %s", d.file, p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Datasource != nil && a.Datasource.Type == "grafana" {
			continue // Grafana's own annotations, no query
		}
		out = append(out, query{where: fmt.Sprintf("%s: annotation %q", d.file, a.Name), expr: a.expr()})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.queryString()
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: variable %q: query %q: want label_values(selector, label)", d.file, v.Name, q))
			continue
		}
		out = append(out, query{where: fmt.Sprintf("%s: variable %q", d.file, v.Name), expr: m[1], label: m[2]})
	}
	return out, errors.Join(errs...)
}

// variableRE matches Grafana's variable syntaxes: ${name}, ${name:format},
// $name and [[name]].
var variableRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]`)

// substitute replaces the variables in expr by values. A variable that is
// neither a Grafana built-in (__...) nor defined by the dashboard is an
// error: Grafana would leave it in the query text.
func substitute(expr string, values map[string]string, defined func(string) bool) (string, error) {
	var errs []error
	out := variableRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if !strings.HasPrefix(name, "__") && !defined(name) {
			errs = append(errs, fmt.Errorf("variable $%s is not defined by the dashboard", name))
		}
		v, ok := values[name]
		if !ok {
			errs = append(errs, fmt.Errorf("variable $%s has no test value", name))
			return m
		}
		return v
	})
	return out, errors.Join(errs...)
}

// metricNames returns the metric names expr selects: selector names and
// __name__ equality matchers. A regular expression on __name__ cannot be
// checked against the allow-list, so it is an error.
func metricNames(expr parser.Expr) ([]string, error) {
	var names []string
	var errs []error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			names = append(names, vs.Name)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel || vs.Name != "" && m.Value == vs.Name {
				continue
			}
			if m.Type != labels.MatchEqual {
				errs = append(errs, fmt.Errorf("selector %s: match metric names with __name__=\"...\" so that they can be checked", vs))
				continue
			}
			names = append(names, m.Value)
		}
		return nil
	})
	return names, errors.Join(errs...)
}

// checkExpr substitutes the variables of expr, parses it, and checks that
// every metric it reads is in allowed. It returns the substituted query.
func checkExpr(expr string, defined func(string) bool, allowed map[string]bool) (string, error) {
	if strings.TrimSpace(expr) == "" {
		return "", errors.New("empty query")
	}
	concrete, err := substitute(expr, testValues, defined)
	if err != nil {
		return "", err
	}
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(concrete)
	if err != nil {
		return "", fmt.Errorf("%q: %w", concrete, err)
	}
	names, err := metricNames(parsed)
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%q reads no metric", concrete)
	}
	for _, n := range names {
		if !allowed[n] {
			return "", fmt.Errorf("%q: metric %s is not exported by slogate (misspelled?)", concrete, n)
		}
	}
	return concrete, nil
}

// checkedQueries returns every query of every dashboard with its variables
// substituted, failing the test for any that does not check out.
func checkedQueries(t *testing.T, ds []*dashboard) []query {
	t.Helper()
	allowed := allowedMetrics()
	var out []query
	for _, d := range ds {
		qs, err := d.queries()
		if err != nil {
			t.Error(err)
		}
		defined := func(name string) bool { return d.variable(name) != nil }
		for _, q := range qs {
			concrete, err := checkExpr(q.expr, defined, allowed)
			if err != nil {
				t.Errorf("%s: %v", q.where, err)
				continue
			}
			q.template, q.expr, q.values = q.expr, concrete, testValues
			out = append(out, q)
		}
	}
	return out
}

func TestDashboardStructure(t *testing.T) {
	ds := loadDashboards(t)
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(d.file, func(t *testing.T) {
			if d.Title == "" {
				t.Error("no title")
			}
			if want, ok := wantUIDs[d.file]; !ok {
				t.Errorf("uid %q: add the file to wantUIDs so that its uid stays stable", d.UID)
			} else if d.UID != want {
				t.Errorf("uid %q, want %q (links and bookmarks use it)", d.UID, want)
			}
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %q also used by %s", d.UID, other)
			}
			uids[d.UID] = d.file
			if d.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want >= 39", d.SchemaVersion)
			}
			checkDatasourceVariable(t, d)
			checkVariables(t, d)
			checkPanels(t, d)
			for _, a := range d.Annotations.List {
				if a.Datasource == nil || a.Datasource.Type == "grafana" {
					continue
				}
				checkRef(t, fmt.Sprintf("annotation %q", a.Name), a.Datasource)
			}
		})
	}
	// Data links between dashboards must point at dashboards that exist.
	for _, d := range ds {
		for _, m := range regexp.MustCompile(`/d/([A-Za-z0-9_-]+)`).FindAllStringSubmatch(string(d.raw), -1) {
			if _, ok := uids[m[1]]; !ok {
				t.Errorf("%s: link to /d/%s: no dashboard has that uid", d.file, m[1])
			}
		}
	}
	for file := range wantUIDs {
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func checkDatasourceVariable(t *testing.T, d *dashboard) {
	t.Helper()
	v := d.variable("DS_PROMETHEUS")
	if v == nil {
		t.Error("templating has no DS_PROMETHEUS variable")
		return
	}
	var q string
	_ = json.Unmarshal(v.Query, &q)
	if v.Type != "datasource" || q != "prometheus" {
		t.Errorf("DS_PROMETHEUS: type %q query %q, want datasource / prometheus", v.Type, q)
	}
	// Provisioned next to the datasource, the dashboards pick it without
	// anyone touching the drop-down.
	if v.Current.Value != datasourceUID {
		t.Errorf("DS_PROMETHEUS: current value %v, want the provisioned datasource's uid %q", v.Current.Value, datasourceUID)
	}
}

func checkVariables(t *testing.T, d *dashboard) {
	t.Helper()
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		checkRef(t, fmt.Sprintf("variable %q", v.Name), v.Datasource)
		// Grafana's default "All" is the list of every value, which does
		// not match series that lack the label (an SLO without a team).
		if v.IncludeAll && v.AllValue != ".*" {
			t.Errorf("variable %q: allValue %q, want \".*\"", v.Name, v.AllValue)
		}
	}
}

func checkRef(t *testing.T, where string, ref *datasourceRef) {
	t.Helper()
	if ref == nil || ref.Type != "prometheus" || ref.UID != dsVariable {
		t.Errorf("%s: datasource %+v, want {prometheus %s}", where, ref, dsVariable)
	}
}

func checkPanels(t *testing.T, d *dashboard) {
	t.Helper()
	ids := map[int]string{}
	var placed []panel
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" {
			t.Errorf("a %s panel has no title", p.Type)
		}
		if p.ID == nil {
			t.Errorf("%s: no id", where)
		} else if other, ok := ids[*p.ID]; ok {
			t.Errorf("%s: id %d also used by panel %q", where, *p.ID, other)
		} else {
			ids[*p.ID] = p.Title
		}
		if g := p.GridPos; g == nil {
			t.Errorf("%s: no gridPos", where)
		} else if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, *g)
		} else if len(p.Panels) == 0 {
			placed = append(placed, p)
		}
		if p.Type == "row" {
			continue
		}
		checkRef(t, where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			checkRef(t, fmt.Sprintf("%s target %s", where, tg.RefID), tg.Datasource)
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	// Overlapping panels are moved by Grafana at load and the layout in
	// the file is no longer the one on screen.
	for i, a := range placed {
		for _, b := range placed[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %q %+v and %q %+v overlap", a.Title, *ga, b.Title, *gb)
			}
		}
	}
}

func TestQueriesParseAndUseExportedMetrics(t *testing.T) {
	ds := loadDashboards(t)
	qs := checkedQueries(t, ds)
	if len(qs) < 10 {
		t.Errorf("only %d queries checked; the dashboards were not read?", len(qs))
	}
}

// groupsMetrics are the per-SLO metrics without a group label: a grouped
// SLO's counts of groups.
var groupsMetrics = map[string]bool{"slogate_slo_groups": true, "slogate_slo_groups_limited": true}

// groupSelection says what selector vs reads of a grouped SLO's series:
// "aggregate" (group=""), "groups" (group!="" or another matcher that
// excludes ""), or "" for no matcher on group (both, for a slogate_slo_*
// metric, since the series of each group carry the grouped SLO's name).
func groupSelection(vs *parser.VectorSelector) string {
	for _, m := range vs.LabelMatchers {
		if m.Name != "group" {
			continue
		}
		if m.Matches("") {
			return "aggregate"
		}
		return "groups"
	}
	return ""
}

// TestPerSLOPanelsChooseAggregateOrGroups: every series of a group's SLO
// has slo="<grouped SLO>", so a per-SLO selector without a matcher on
// group mixes the aggregate with its groups (a max by (slo) picks the
// worst group, a table gets a row per group). Every selector of a
// slogate_slo_* metric in a panel or annotation must say which it wants.
func TestPerSLOPanelsChooseAggregateOrGroups(t *testing.T) {
	for _, d := range loadDashboards(t) {
		qs, err := d.queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.label != "" {
				continue // a variable's values: the group SLOs' slo is their parent's
			}
			concrete, err := substitute(q.expr, testValues, func(string) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(concrete)
			if err != nil {
				t.Fatalf("%s: %v", q.where, err)
			}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if ok && strings.HasPrefix(vs.Name, "slogate_slo_") && !groupsMetrics[vs.Name] && groupSelection(vs) == "" {
					t.Errorf("%s: selector %s: add group=\"\" (the aggregate) or group!=\"\" (its groups)", q.where, vs)
				}
				return nil
			})
		}
	}
}

// TestGroupPanels pins the panels of grouped SLOs: the overview's columns
// of groups followed and not followed, and the detail dashboard's Groups
// row: the counts, and budget and burn rate per group, worst first.
func TestGroupPanels(t *testing.T) {
	checkPinnedPanels(t, []wantPanel{
		{file: "slo-overview.json", panel: "SLOs", typ: "table",
			exprs: []string{`slogate_slo_groups{service=~"$service"}`, `slogate_slo_groups_limited{service=~"$service"}`},
			raw:   []string{`"Value #L": "Groups"`, `"Value #M": "Groups not followed"`}},
		{file: "slo-detail.json", panel: "Groups", typ: "row"},
		{file: "slo-detail.json", panel: "Groups followed", typ: "stat", exprs: []string{`max(slogate_slo_groups{slo="$slo"})`}, raw: []string{`"not grouped"`}},
		{file: "slo-detail.json", panel: "Groups not followed (maxGroups)", typ: "stat", exprs: []string{`max(slogate_slo_groups_limited{slo="$slo"})`},
			raw: []string{"Raise spec.maxGroups or group by fewer labels"}},
		{file: "slo-detail.json", panel: "Groups, worst budget first", typ: "table",
			exprs: []string{`slogate_slo_error_budget_remaining_ratio{slo="$slo", group!=""}`, `slogate_slo_burn_rate{slo="$slo", group!="", window="1h"}`},
			raw:   []string{`"displayName": "Budget remaining"`, `"desc": false`}},
		{file: "slo-detail.json", panel: "Error budget remaining per group", typ: "timeseries",
			exprs: []string{`min by (group) (slogate_slo_error_budget_remaining_ratio{slo="$slo", group!=""})`}, legend: "{{group}}",
			raw: []string{`"sortBy": "Last *"`, `"sortDesc": false`}},
		{file: "slo-detail.json", panel: "Burn rate over 1h per group", typ: "timeseries",
			exprs: []string{`max by (group) (slogate_slo_burn_rate{slo="$slo", group!="", window="1h"})`}, legend: "{{group}}",
			raw: []string{`"sortBy": "Last *"`, `"sortDesc": true`}},
	})
}

// TestRelativeAndLowTrafficPanels pins the panels of relative tolerances
// and low-traffic guards: a probe's value beside its baseline, the probes
// not judged for want of events, and the alert tiers held off by
// minEvents.
func TestRelativeAndLowTrafficPanels(t *testing.T) {
	checkPinnedPanels(t, []wantPanel{
		{file: "chaos-gates.json", panel: "Probe value vs baseline", typ: "timeseries",
			exprs: []string{
				`max by (hypothesis, probe) (slogate_probe_value{hypothesis=~"$hypothesis"}) and on(hypothesis, probe) slogate_probe_baseline{hypothesis=~"$hypothesis"}`,
				`max by (hypothesis, probe) (slogate_probe_baseline{hypothesis=~"$hypothesis"})`,
			},
			raw: []string{`"legendFormat": "{{hypothesis}} / {{probe}}: value"`, `"legendFormat": "{{hypothesis}} / {{probe}}: baseline"`, `"options": "B"`, `"fill": "dash"`}},
		{file: "chaos-gates.json", panel: "Probes on low traffic", typ: "stat",
			exprs: []string{`count(max by (hypothesis, probe) (slogate_probe_events{hypothesis=~"$hypothesis"}) unless on(hypothesis, probe) slogate_probe_within_tolerance{hypothesis=~"$hypothesis"}) or vector(0)`}},
		{file: "chaos-gates.json", panel: "Events of guarded probes", typ: "table",
			exprs: []string{`max by (hypothesis, probe) (slogate_probe_events{hypothesis=~"$hypothesis"})`, `slogate_probe_within_tolerance{hypothesis=~"$hypothesis"}) and on(hypothesis, probe) slogate_probe_events`},
			raw:   []string{`"Value #A": "Events"`, `"Value #B": "Judged"`, `"value": "no: low traffic"`}},
		{file: "slo-detail.json", panel: "Alerts on low traffic (minEvents)", typ: "state-timeline",
			exprs: []string{`max by (severity) (slogate_slo_alert_low_traffic{slo="$slo", group=""})`}, legend: "{{severity}}",
			raw: []string{`"text": "low traffic: held"`, `"text": "enough events"`}},
	})
}

// wantPanel is a panel a test pins.
type wantPanel struct {
	file, panel, typ string
	exprs            []string // substrings of the panel's targets, in order
	legend           string   // of every target, if set
	raw              []string // substrings of the panel's JSON
}

// checkPinnedPanels checks that each panel of wants is there as pinned.
func checkPinnedPanels(t *testing.T, wants []wantPanel) {
	t.Helper()
	byFile := map[string]*dashboard{}
	for _, d := range loadDashboards(t) {
		byFile[d.file] = d
	}
	for _, w := range wants {
		t.Run(w.file+"/"+w.panel, func(t *testing.T) {
			d := byFile[w.file]
			if d == nil {
				t.Fatalf("no %s", w.file)
			}
			var found *panel
			for _, p := range d.allPanels() {
				if p.Title == w.panel && p.Type == w.typ {
					found = &p
					break
				}
			}
			if found == nil {
				t.Fatalf("no %s panel %q", w.typ, w.panel)
			}
			js := panelJSON(t, d, w.panel, w.typ)
			i := 0
			for _, tg := range found.Targets {
				if i < len(w.exprs) && strings.Contains(tg.Expr, w.exprs[i]) {
					i++
				}
			}
			if i < len(w.exprs) {
				t.Errorf("no target reads %s", w.exprs[i])
			}
			if w.legend != "" && !strings.Contains(js, `"legendFormat":"`+w.legend+`"`) {
				t.Errorf("legend is not %s", w.legend)
			}
			for _, s := range w.raw {
				// Compact JSON: drop the spaces the pinned strings have after colons.
				if !strings.Contains(js, strings.ReplaceAll(s, `": `, `":`)) {
					t.Errorf("panel JSON lacks %s", s)
				}
			}
		})
	}
}

// panelJSON is the compact JSON of d's top-level panel of that title and
// type.
func panelJSON(t *testing.T, d *dashboard, title, typ string) string {
	t.Helper()
	var all struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(d.raw, &all); err != nil {
		t.Fatal(err)
	}
	for _, raw := range all.Panels {
		var p struct{ Title, Type string }
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Title == title && p.Type == typ {
			b, err := json.Marshal(raw) // compacts it
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("%s: no top-level %s panel %q", d.file, typ, title)
	return ""
}

// TestCheckExpr makes sure the checker itself catches what it is for.
func TestCheckExpr(t *testing.T) {
	defined := func(name string) bool { return name == "slo" || name == "service" }
	allowed := allowedMetrics()
	for _, tc := range []struct {
		name, expr, wantErr string
	}{
		{name: "ok", expr: `max(slogate_slo_burn_rate{slo="$slo", window="1h"})`},
		{name: "histogram suffix", expr: `histogram_quantile(0.9, sum by (le) (rate(slogate_query_duration_seconds_bucket[$__rate_interval])))`},
		{name: "braced variable with format", expr: `slogate_slo_info{service=~"${service:regex}"}`},
		{name: "name matcher", expr: `{__name__="slogate_slo_info", slo="$slo"}`},
		{name: "misspelled metric", expr: `slogate_slo_burnrate{slo="$slo"}`, wantErr: "slogate_slo_burnrate is not exported"},
		{name: "probe baseline", expr: `slogate_probe_baseline{hypothesis="h"} and on(hypothesis, probe) slogate_probe_events`},
		{name: "misspelled probe baseline", expr: `slogate_probe_baselines{hypothesis="h"}`, wantErr: "slogate_probe_baselines is not exported"},
		{name: "misspelled low traffic", expr: `slogate_slo_alert_lowtraffic{slo="$slo"}`, wantErr: "slogate_slo_alert_lowtraffic is not exported"},
		{name: "misspelled name matcher", expr: `{__name__="slogate_slo_infoo"}`, wantErr: "slogate_slo_infoo is not exported"},
		{name: "regexp name matcher", expr: `{__name__=~"slogate_.*"}`, wantErr: "match metric names with __name__="},
		{name: "not an exported histogram series", expr: `slogate_query_failures_total_bucket`, wantErr: "is not exported"},
		{name: "syntax error", expr: `sum(slogate_slo_info`, wantErr: "unclosed left parenthesis"},
		{name: "undefined variable", expr: `slogate_slo_info{team="$team"}`, wantErr: "$team is not defined"},
		{name: "no metric", expr: `vector(1)`, wantErr: "reads no metric"},
		{name: "empty", expr: ` `, wantErr: "empty query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkExpr(tc.expr, defined, allowed)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestProvisioning(t *testing.T) {
	var dsFile struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "provisioning/datasources/slogate.yml", &dsFile)
	if dsFile.APIVersion != 1 || len(dsFile.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d datasources; want 1 and 1", dsFile.APIVersion, len(dsFile.Datasources))
	}
	if ds := dsFile.Datasources[0]; ds.UID != datasourceUID || ds.Type != "prometheus" || ds.URL != "${PROMETHEUS_URL}" || ds.Name == "" {
		t.Errorf("datasource %+v: want a named prometheus datasource, uid %q, url ${PROMETHEUS_URL}", ds, datasourceUID)
	}

	var provFile struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type, Folder string
			Options            struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "provisioning/dashboards/slogate.yml", &provFile)
	if provFile.APIVersion != 1 || len(provFile.Providers) != 1 {
		t.Fatalf("dashboards: apiVersion %d, %d providers; want 1 and 1", provFile.APIVersion, len(provFile.Providers))
	}
	if p := provFile.Providers[0]; p.Type != "file" || p.Folder != "slogate" || p.Options.Path != "/var/lib/grafana/dashboards/slogate" {
		t.Errorf("provider %+v: want type file, folder slogate, path /var/lib/grafana/dashboards/slogate", p)
	}
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// exportedOutsideComponents are the names of slogateMetrics registered by
// the composition root rather than a component TestMetricsListIsExported
// builds; the end-to-end test sees them from a real slogate serve.
var exportedOutsideComponents = map[string]string{
	"slogate_config_last_reload_successful":                "app/reload.go",
	"slogate_config_last_reload_success_timestamp_seconds": "app/reload.go",
	"slogate_build_info":                                   "cmd/slogate/serve.go (versioncollector)",
}

// recordingRegisterer registers into a registry and keeps the collectors.
type recordingRegisterer struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// TestMetricsListIsExported: slogateMetrics is what the query check
// trusts, so a name in it that slogate does not export (a typo in the list
// and the same typo in a panel) would pass. Every name must be described
// by a collector of the evaluator, the run manager or the notifier, or be
// one the composition root registers.
func TestMetricsListIsExported(t *testing.T) {
	rec := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	ev, err := evaluator.New(evaluator.Options{Querier: noQuerier{}, Registerer: rec})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }, Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.New(notifier.Options{URLs: []string{"http://127.0.0.1:9093"}, Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			described[m[1]] = true
		}
	}
	for _, n := range slices.Concat(slogateMetrics, slogateHistograms) {
		if !described[n] && exportedOutsideComponents[n] == "" {
			t.Errorf("slogateMetrics lists %s, which no collector of slogate describes (misspelled?)", n)
		}
	}
	// The check must see the metrics of relative probes and low-traffic
	// guards, which come from the evaluator's collector.
	for _, n := range []string{"slogate_probe_baseline", "slogate_probe_events", "slogate_slo_alert_low_traffic"} {
		if !described[n] || !slices.Contains(slogateMetrics, n) {
			t.Errorf("%s: described %v, listed %v", n, described[n], slices.Contains(slogateMetrics, n))
		}
	}
}

// noQuerier is a Querier never asked: no definitions are evaluated.
type noQuerier struct{}

func (noQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	return nil, errors.New("not asked")
}

func (noQuerier) QueryRange(context.Context, string, evaluator.Range) (model.Value, error) {
	return nil, errors.New("not asked")
}
