package slo

import (
	"fmt"
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// openSLOv1alphaVersion is the OpenSLO dialect Sloth reads.
const openSLOv1alphaVersion = "openslo/v1alpha"

// openSLOv1alpha decodes an OpenSLO v1alpha SLO as Sloth reads it: each
// objective is an SLO of its own, named "<metadata.name>-<index>" as Sloth
// names it (so that its series keep their names after a move), over
// ratioMetrics good/total queries with source prometheus and queryType
// promql; timeWindows gives the rolling window (default 30d). Other kinds
// (Service) carry nothing to evaluate and are skipped with a warning.
func (l *loader) openSLOv1alpha(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec")
	kind, kindNode := top.str("kind")
	switch {
	case kind == KindSLO:
	case kindNode == nil:
		if !top.has("kind") {
			d.errorf(root, "kind is required (SLO)")
		}
		return
	case kind == "Service":
		d.warnf(kindNode, "OpenSLO kind %q is ignored: slogate reads OpenSLO SLO documents", kind)
		return
	default:
		d.errorf(kindNode, "unknown OpenSLO %s kind %q: slogate reads SLO%s", openSLOv1alphaVersion, kind, didYouMean(kind, []string{KindSLO}))
		return
	}
	m, mf := d.metadata(top, root, "OpenSLO SLO", "displayName")
	labels := openSLOLabels(mf)
	top.require(root, m.what, "spec")
	spec := top.sub("spec", "description", "service", "budgetingMethod", "objectives", "timeWindows")
	spec.require(root, m.what, "service", "objectives")
	service, _ := spec.str("service")
	description, _ := spec.str("description")
	if bm, n := spec.str("budgetingMethod"); n != nil && bm != "Occurrences" {
		d.errorf(n, "spec.budgetingMethod: %q is not supported: slogate counts occurrences (Occurrences)", bm)
	}
	window, _ := d.openSLOv1alphaWindow(spec)
	items := spec.list("objectives")
	if n := spec.node("objectives"); n != nil && n.Kind == yaml.SequenceNode && len(items) == 0 {
		d.errorf(n, "spec.objectives: at least one objective is required")
	}
	for i, item := range items {
		path := fmt.Sprintf("spec.objectives[%d]", i)
		of := d.fields(item, path, "displayName", "value", "target", "ratioMetrics", "op", "timeSliceTarget")
		if of.bad || of.mapping == nil {
			continue
		}
		of.require(of.mapping, "", "target", "ratioMetrics")
		for _, k := range []string{"op", "timeSliceTarget"} {
			if n := of.node(k); n != nil {
				d.errorf(n, "%s.%s: not supported: slogate reads ratio objectives (target with ratioMetrics)", path, k)
			}
		}
		o := &SLO{Service: service, Description: description, Labels: labels, Pos: d.pos(item), Window: window, Source: Source{Format: FormatOpenSLOv1alpha},
			Alerting: Alerting{Enabled: true, Name: DefaultAlertName, Page: AlertTier{Enabled: true}, Ticket: AlertTier{Enabled: true}},
			Gate:     GatePolicy{BurnRateWindow: DefaultBurnRateWindow}}
		if m.name != "" {
			o.Name = fmt.Sprintf("%s-%d", m.name, i)
		}
		if v, n, ok := of.num("target"); ok {
			if v <= 0 || v >= 1 {
				d.errorf(n, "%s.target: %s is out of range: target is a ratio above 0 and below 1, like 0.999", path, formatFloat(v))
			} else {
				o.Objective = math.Round(v*100*1e9) / 1e9
			}
		}
		rm := of.sub("ratioMetrics", "good", "total", "incremental")
		rm.require(rm.mapping, "", "good", "total")
		o.Indicator.Ratio = &RatioIndicator{}
		o.Indicator.Ratio.Good, _ = d.openSLOv1alphaQuery(rm, "good")
		o.Indicator.Ratio.Total, _ = d.openSLOv1alphaQuery(rm, "total")
		l.set.SLOs = append(l.set.SLOs, o)
		if o.Name != "" {
			l.define(d, KindSLO, o.Name, cmpNode(item, m.nameNode), o)
		}
	}
}

// openSLOv1alphaQuery reads one of ratioMetrics' {source, queryType, query}.
func (d *decoder) openSLOv1alphaQuery(rm *fields, name string) (string, bool) {
	f := rm.sub(name, "source", "queryType", "query", "metadata")
	if f.bad || f.mapping == nil {
		return "", false
	}
	f.require(f.mapping, "", "query")
	if src, n := f.str("source"); n != nil && !strings.EqualFold(src, "prometheus") && src != "sloth" {
		d.errorf(n, "%s.source: %q is not a Prometheus source: slogate queries Prometheus-compatible backends only", f.path, src)
		return "", false
	}
	if qt, n := f.str("queryType"); n != nil && !strings.EqualFold(qt, "promql") {
		d.errorf(n, "%s.queryType: %q is not supported: slogate reads promql queries", f.path, qt)
		return "", false
	}
	return d.query(f.node("query"), f.path+".query", true)
}

// openSLOv1alphaWindow reads timeWindows: [{count, unit, isRolling}].
func (d *decoder) openSLOv1alphaWindow(spec *fields) (time.Duration, bool) {
	items := spec.list("timeWindows")
	if len(items) == 0 {
		return DefaultWindow, true
	}
	if len(items) > 1 {
		d.errorf(cmpNode(items[1], spec.node("timeWindows")), "spec.timeWindows[1]: only one time window is supported")
	}
	tw := d.fields(items[0], "spec.timeWindows[0]", "count", "unit", "isRolling", "calendar")
	if tw.bad || tw.mapping == nil {
		return DefaultWindow, false
	}
	tw.require(tw.mapping, "", "count", "unit")
	if !tw.boolean("isRolling", true) || tw.has("calendar") {
		d.errorf(tw.mapping, "spec.timeWindows[0]: calendar windows are not supported yet: slogate evaluates rolling windows (isRolling: true)")
		return DefaultWindow, false
	}
	count, countNode, ok := tw.num("count")
	unit, unitNode := tw.str("unit")
	if !ok || unitNode == nil {
		return DefaultWindow, false
	}
	units := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour}
	per, known := units[strings.ToLower(unit)]
	switch {
	case !known && contains([]string{"month", "quarter", "year"}, strings.ToLower(unit)):
		d.errorf(unitNode, "spec.timeWindows[0].unit: %q: months, quarters and years vary in length; write days, like count: 30, unit: Day", unit)
		return DefaultWindow, false
	case !known:
		d.errorf(unitNode, "spec.timeWindows[0].unit: unknown unit %q; use Second, Minute, Hour, Day or Week", unit)
		return DefaultWindow, false
	case count <= 0 || count != math.Trunc(count):
		d.errorf(countNode, "spec.timeWindows[0].count: %s: must be a positive whole number", formatFloat(count))
		return DefaultWindow, false
	}
	w := time.Duration(count) * per
	d.checkWindow(w, countNode, "spec.timeWindows[0]")
	return w, true
}
