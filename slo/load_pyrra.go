package slo

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/internal/yamlnode"
)

// Pyrra's Kubernetes resource.
const (
	pyrraAPIVersion = "pyrra.dev/v1alpha1"
	pyrraKind       = "ServiceLevelObjective"
	// pyrraLabelPrefix marks the metadata labels Pyrra copies onto its
	// series; the others only label the Kubernetes object.
	pyrraLabelPrefix = "pyrra.dev/"
)

// pyrra decodes Pyrra's ServiceLevelObjective. Pyrra's indicators name
// counters (metric:), which slogate turns into the per-second rates it
// evaluates: ratio → sum(rate(errors)) over sum(rate(total)); latency →
// the success bucket over the count; latencyNative → histogram_fraction
// below latency; bool_gauge → the share of time the gauge is 0, time
// weighted like any raw indicator. The SLO is named after the resource;
// its service is the namespace (the name without one). Labels under
// pyrra.dev/ become SLO labels without the prefix, as Pyrra puts them on
// its series. grouping makes the SLO one SLO per set of values of those
// labels, besides the aggregate (SLO.GroupBy); alerting.absent and Pyrra's
// rule-output settings are Pyrra's own and ignored with a warning.
func (l *loader) pyrra(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec", "status")
	kind, kindNode := top.str("kind")
	if kindNode == nil {
		if !top.has("kind") {
			d.errorf(root, "kind is required: %s (Pyrra's SLO resource)", pyrraKind)
		}
		return
	}
	if kind != pyrraKind {
		d.errorf(kindNode, "kind %q: slogate reads %s of %s", kind, pyrraKind, pyrraAPIVersion)
		return
	}
	mf := top.sub("metadata", "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
		"creationTimestamp", "deletionTimestamp", "generateName", "managedFields", "finalizers", "ownerReferences")
	name, nameNode := mf.str("name")
	if nameNode == nil && !mf.bad {
		d.errorf(root, "ServiceLevelObjective: metadata.name is required")
	} else if msg := checkName(name); nameNode != nil && msg != "" {
		d.errorf(nameNode, "metadata.name: %q %s", name, msg)
	}
	namespace, _ := mf.str("namespace")
	o := &SLO{Name: name, Service: namespace, Pos: d.pos(root), Source: Source{Format: FormatPyrra},
		Alerting: Alerting{Enabled: true, Name: DefaultAlertName, Page: AlertTier{Enabled: true}, Ticket: AlertTier{Enabled: true}},
		Gate:     GatePolicy{BurnRateWindow: DefaultBurnRateWindow}}
	if o.Service == "" {
		o.Service = name
	}
	o.Labels = pyrraLabels(d, mf)

	top.require(root, "ServiceLevelObjective", "spec")
	spec := top.sub("spec", "description", "target", "window", "indicator", "alerting",
		"partial_response_strategy", "performanceOverAccuracy", "ruleOutput", "shortRulesLabels", "longRulesLabels", "enableDescriptionAsLabel")
	spec.require(root, "ServiceLevelObjective", "target", "window", "indicator")
	for _, k := range []string{"partial_response_strategy", "performanceOverAccuracy", "ruleOutput", "shortRulesLabels", "longRulesLabels", "enableDescriptionAsLabel"} {
		if n := spec.node(k); n != nil {
			d.warnf(spec.keys[k], "spec.%s: ignored: it shapes the rules Pyrra writes, not what slogate evaluates", k)
		}
	}
	o.Description, _ = spec.str("description")
	if t, n := spec.str("target"); n != nil {
		v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			d.errorf(n, "spec.target: %q is not a number: Pyrra's target is a percentage as a string, like \"99.5\"", t)
		} else {
			o.Objective = v
			d.checkObjective(v, n)
		}
	}
	o.Window = DefaultWindow
	if w, n, ok := spec.duration("window"); ok {
		o.Window = w
		d.checkWindow(w, n, "spec.window")
	}
	o.Indicator, o.GroupBy = d.pyrraIndicator(spec.sub("indicator", "ratio", "latency", "latencyNative", "bool_gauge"))

	af := spec.sub("alerting", "disabled", "burnrates", "absent", "name", "absentName", "severities")
	if af.boolean("disabled", false) || !af.boolean("burnrates", true) {
		o.Alerting.Enabled = false
	}
	if an, n := af.str("name"); n != nil && an != "" {
		o.Alerting.Name = an
		if msg := checkAlertName(an); msg != "" {
			d.errorf(n, "spec.alerting.name: %s", msg)
		}
	}
	for _, k := range []string{"absent", "absentName"} {
		if af.has(k) {
			d.warnf(af.keys[k], "spec.alerting.%s: ignored: slogate reports missing data as unknown verdicts and SlogateEvaluationStale, not as an absent alert", k)
		}
	}
	if af.has("severities") {
		d.warnf(af.keys["severities"], "spec.alerting.severities: ignored: slogate's burn-rate alerts carry severity page or ticket")
	}
	l.set.SLOs = append(l.set.SLOs, o)
	l.define(d, KindSLO, o.Name, nameNode, o)
}

// pyrraLabels takes the metadata labels under pyrra.dev/, without it.
func pyrraLabels(d *decoder, mf *fields) map[string]string {
	n := mf.node("labels")
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			d.errorf(n, "metadata.labels: expected a mapping, got %s", yamlnode.Describe(n))
		}
		return nil
	}
	flat := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || !strings.HasPrefix(k.Value, pyrraLabelPrefix) {
			continue
		}
		short := *k
		short.Value = strings.TrimPrefix(k.Value, pyrraLabelPrefix)
		flat.Content = append(flat.Content, &short, n.Content[i+1])
	}
	if len(flat.Content) == 0 {
		return nil
	}
	tmp := &fields{d: d, path: "metadata", vals: map[string]*yaml.Node{"labels": flat}, keys: map[string]*yaml.Node{}}
	return tmp.labels("labels", reservedSLOLabels...)
}

// pyrraIndicator converts exactly one of Pyrra's indicators, and returns
// its grouping.
func (d *decoder) pyrraIndicator(f *fields) (Indicator, []string) {
	var ind Indicator
	if f.bad || f.mapping == nil {
		return ind, nil
	}
	set := 0
	for _, k := range []string{"ratio", "latency", "latencyNative", "bool_gauge"} {
		if f.has(k) {
			set++
		}
	}
	if set != 1 {
		d.errorf(f.mapping, "spec.indicator: set exactly one of ratio, latency, latencyNative and bool_gauge")
		return ind, nil
	}
	// rate turns a Pyrra counter selector into slogate's per-second rate
	// over the window.
	rate := func(g *fields, name string) string {
		m := g.sub(name, "metric")
		m.require(m.mapping, "", "metric")
		sel, _, ok := d.plainSelector(m.node("metric"), m.path+".metric")
		if !ok {
			return ""
		}
		return "sum(rate(" + sel + "[{{.window}}]))"
	}
	var g *fields
	switch {
	case f.has("ratio"):
		g = f.sub("ratio", "errors", "total", "grouping")
		g.require(g.mapping, "", "errors", "total")
		ind.Ratio = &RatioIndicator{Errors: rate(g, "errors"), Total: rate(g, "total")}
	case f.has("latency"):
		g = f.sub("latency", "success", "total", "grouping")
		g.require(g.mapping, "", "success", "total")
		ind.Ratio = &RatioIndicator{Good: rate(g, "success"), Total: rate(g, "total")}
	case f.has("latencyNative"):
		g = f.sub("latencyNative", "latency", "total", "grouping")
		g.require(g.mapping, "", "latency", "total")
		m := g.sub("total", "metric")
		sel, okSel := d.seriesSelector(m.node("metric"), m.path+".metric")
		lat, n := g.str("latency")
		if n == nil || !okSel {
			break
		}
		dur, err := model.ParseDuration(lat)
		if err != nil || dur <= 0 {
			d.errorf(n, "%s.latency: %q is not a positive duration like 100ms or 1s", g.path, lat)
			break
		}
		ind.Latency = &LatencyIndicator{Histogram: sel, Threshold: time.Duration(dur).Seconds(), Native: true}
	case f.has("bool_gauge"):
		g = f.sub("bool_gauge", "metric", "grouping")
		g.require(g.mapping, "", "metric")
		if sel, _, ok := d.plainSelector(g.node("metric"), g.path+".metric"); ok {
			ind.Raw = &RawIndicator{ErrorRatio: "1 - avg(avg_over_time(" + sel + "[{{.window}}]))"}
		}
	}
	return ind, d.pyrraGrouping(g)
}
