package slo

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// OpenSLO v1 kinds that carry nothing slogate evaluates: read and skipped
// with a warning, so that a directory of OpenSLO objects can be pointed at
// as it is.
var openSLOIgnoredKinds = []string{"Service", "AlertPolicy", "AlertCondition", "AlertNotificationTarget", "BudgetAdjustment"}

// kindDataSource is OpenSLO's description of a metrics backend: read for its
// type, so that an SLI whose metricSourceRef names a backend slogate cannot
// query is refused instead of being sent to Prometheus.
const kindDataSource = "DataSource"

// openSLODataSource is a decoded DataSource: its type and where it is.
type openSLODataSource struct {
	typ  string
	node *yaml.Node
}

// prometheusCompatible are the metric source types whose queries are PromQL
// for a Prometheus-compatible API (compared case-insensitively).
var prometheusCompatible = []string{"prometheus", "thanos", "cortex", "mimir", "victoriametrics"}

func isPrometheusCompatible(typ string) bool {
	return contains(prometheusCompatible, strings.ToLower(typ))
}

// openSLI is a decoded OpenSLO SLI: the indicator it converts to. It is
// converted once, with diagnostics at the SLI's own nodes, and copied into
// every SLO that refers to it.
type openSLI struct {
	indicator Indicator
}

// openSLO decodes an OpenSLO v1 document. Supported: kind SLO with
// budgetingMethod Occurrences, one rolling timeWindow, one objective
// (target as a ratio or targetPercent), and an indicator that is inline or
// an indicatorRef to a kind SLI document (in any file), whose ratioMetric
// reads Prometheus queries: good or bad plus total, or raw with rawType
// failure/success. How fixed-range queries become windowed ones is
// described at openSLOQuery. Alerting uses slogate's defaults; metadata
// labels become SLO labels (a list value is joined with ",").
func (l *loader) openSLO(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec")
	kind, kindNode := top.str("kind")
	switch {
	case kind == KindSLO || kind == kindSLI:
	case kind == kindDataSource:
		l.openSLODataSource(d, top, root)
		return
	case kindNode == nil:
		if !top.has("kind") { // else present but not a string: reported by str
			d.errorf(root, "kind is required (SLO or SLI)")
		}
		return
	case contains(openSLOIgnoredKinds, kind):
		d.warnf(kindNode, "OpenSLO kind %q is ignored: slogate reads OpenSLO SLO and SLI documents", kind)
		return
	default:
		d.errorf(kindNode, "unknown OpenSLO kind %q: slogate reads SLO and SLI%s", kind, didYouMean(kind, []string{KindSLO, kindSLI}))
		return
	}
	m, mf := d.metadata(top, root, "OpenSLO "+kind, "displayName")
	if kind == kindSLI {
		sli := &openSLI{}
		sf := top.sub("spec", "thresholdMetric", "ratioMetric", "description")
		top.require(root, m.what, "spec")
		sli.indicator = l.openSLISpec(d, sf)
		l.define(d, kindSLI, m.name, m.nameNode, sli)
		return
	}
	m.labels = openSLOLabels(mf)
	o := &SLO{Name: m.name, Labels: m.labels, Pos: d.pos(root), Window: DefaultWindow, Source: Source{Format: FormatOpenSLO},
		Alerting: Alerting{Enabled: true, Name: DefaultAlertName, Page: AlertTier{Enabled: true}, Ticket: AlertTier{Enabled: true}},
		Gate:     GatePolicy{BurnRateWindow: DefaultBurnRateWindow}}
	top.require(root, m.what, "spec")
	spec := top.sub("spec", "description", "service", "indicator", "indicatorRef", "timeWindow",
		"budgetingMethod", "objectives", "alertPolicies")
	spec.require(root, m.what, "service", "timeWindow", "objectives")
	o.Service, _ = spec.str("service")
	o.Description, _ = spec.str("description")
	if w, cal, ok := d.openSLOWindow(spec); ok {
		o.Window, o.Calendar = w, cal
	}
	method := "Occurrences"
	if bm, n := spec.str("budgetingMethod"); n != nil {
		switch bm {
		case "Occurrences", "Timeslices", "RatioTimeslices":
			method = bm
		default:
			d.errorf(n, "spec.budgetingMethod: %q is not supported: use Occurrences, Timeslices or RatioTimeslices", bm)
		}
	}
	objectives := d.openSLOObjectives(spec, method)
	if n := spec.node("alertPolicies"); n != nil {
		d.warnf(n, "spec.alertPolicies: ignored: slogate sends its own multi-window burn-rate alerts")
	}
	switch {
	case spec.has("indicator") && spec.has("indicatorRef"):
		d.errorf(spec.mapping, "spec: set either indicator or indicatorRef, not both")
	case !spec.has("indicator") && !spec.has("indicatorRef") && spec.mapping != nil && !spec.bad:
		d.errorf(root, "%s: spec.indicator or spec.indicatorRef is required", m.what)
	case spec.has("indicator"):
		ind := spec.sub("indicator", "metadata", "spec")
		ind.sub("metadata", "name", "displayName", "labels", "annotations")
		ind.require(ind.mapping, "", "spec")
		o.Indicator = l.openSLISpec(d, ind.sub("spec", "thresholdMetric", "ratioMetric", "description"))
	}
	// One SLO per objective: the SLO's own name when there is one objective,
	// "<name>-<index>" for each of several.
	var slos []*SLO
	for i, obj := range objectives {
		c := *o
		c.Objective = obj.objective
		c.Timeslices = obj.timeslices
		if len(objectives) > 1 {
			c.Name = fmt.Sprintf("%s-%d", m.name, i)
			c.Pos = d.pos(obj.node)
		}
		slos = append(slos, &c)
	}
	if len(objectives) == 0 {
		slos = append(slos, o) // reported above; keeps the name defined for references
	}
	// A threshold indicator takes its condition from each objective (op,
	// value), once the indicator is known (an indicatorRef resolves later).
	threshold := func() {
		for i, o := range slos {
			if i < len(objectives) {
				d.openSLOThreshold(o, objectives[i], method)
			}
		}
	}
	if spec.has("indicatorRef") {
		ref, n := spec.str("indicatorRef")
		l.refer(d, n, "spec.indicatorRef", kindSLI, ref, func(target any) {
			for _, o := range slos {
				o.Indicator = target.(*openSLI).indicator.clone()
			}
			threshold()
		})
	} else {
		for _, o := range slos[1:] {
			o.Indicator = o.Indicator.clone() // no pointers shared between SLOs
		}
		threshold()
	}
	for i, o := range slos {
		l.set.SLOs = append(l.set.SLOs, o)
		at := m.nameNode
		if len(slos) > 1 {
			at = objectives[i].node
		}
		l.define(d, KindSLO, o.Name, at, o)
	}
}

// clone copies an indicator so that two SLOs share no pointers.
func (ind Indicator) clone() Indicator {
	if ind.Ratio != nil {
		r := *ind.Ratio
		ind.Ratio = &r
	}
	if ind.Raw != nil {
		r := *ind.Raw
		ind.Raw = &r
	}
	if ind.Latency != nil {
		r := *ind.Latency
		ind.Latency = &r
	}
	return ind
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// openSLOLabels reads OpenSLO labels, whose values may be lists.
func openSLOLabels(mf *fields) map[string]string {
	n := mf.node("labels")
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return mf.labels("labels", reservedSLOLabels...) // reports the type error
	}
	flat := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], mf.d.resolve(n.Content[i+1])
		if v != nil && v.Kind == yaml.SequenceNode {
			parts := make([]string, 0, len(v.Content))
			for _, e := range v.Content {
				if e = mf.d.resolve(e); e != nil && e.Kind == yaml.ScalarNode {
					parts = append(parts, e.Value)
				} else if e != nil {
					mf.d.errorf(e, "metadata.labels.%s: expected a string, got %s", k.Value, yamlnode.Describe(e))
				}
			}
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.Join(parts, ","), Line: v.Line, Column: v.Column}
		}
		if v == nil {
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Line: k.Line, Column: k.Column}
		}
		flat.Content = append(flat.Content, k, v)
	}
	tmp := &fields{d: mf.d, path: mf.path, vals: map[string]*yaml.Node{"labels": flat}, keys: map[string]*yaml.Node{}}
	return tmp.labels("labels", reservedSLOLabels...)
}

// openSLOWindow reads the single time window: rolling (a duration), or a
// calendar one (isRolling: false, a calendar, and 1w, 1M, 1Q or 1Y).
func (d *decoder) openSLOWindow(spec *fields) (time.Duration, *Calendar, bool) {
	items := spec.list("timeWindow")
	if len(items) == 0 {
		if n := spec.node("timeWindow"); n != nil && n.Kind == yaml.SequenceNode {
			d.errorf(n, "spec.timeWindow: one time window is required")
		}
		return 0, nil, false
	}
	if len(items) > 1 {
		d.errorf(cmpNode(items[1], spec.node("timeWindow")), "spec.timeWindow[1]: only one time window is supported")
	}
	tw := d.fields(items[0], "spec.timeWindow[0]", "duration", "isRolling", "calendar")
	if tw.bad || tw.mapping == nil {
		return 0, nil, false
	}
	tw.require(tw.mapping, "", "duration")
	text, n := tw.str("duration")
	// OpenSLO: isRolling defaults to false only where a calendar is given.
	rolling := tw.boolean("isRolling", !tw.has("calendar"))
	if !rolling {
		if n == nil {
			return 0, nil, false
		}
		c := d.openSLOCalendar(tw, text, n)
		if c == nil {
			return 0, nil, false
		}
		return c.Unit.Longest(), c, true
	}
	if tw.has("calendar") {
		d.errorf(tw.node("calendar"), "spec.timeWindow[0].calendar: a rolling window (isRolling: true) has no calendar; set isRolling: false for calendar periods")
	}
	if n == nil {
		return 0, nil, false
	}
	if strings.ContainsAny(text, "MQY") {
		d.errorf(n, "spec.timeWindow[0].duration: %q: a rolling window of months, quarters or years varies in length; write days, like 28d or 30d, or set isRolling: false for calendar periods", text)
		return 0, nil, false
	}
	w, err := model.ParseDuration(text)
	if err != nil {
		d.errorf(n, "spec.timeWindow[0].duration: invalid duration %q: use a number and a unit (m, h, d, w) like 28d", text)
		return 0, nil, false
	}
	d.checkWindow(time.Duration(w), n, "spec.timeWindow[0].duration")
	return time.Duration(w), nil, true
}

// openSLOCalendarUnits are the calendar durations slogate evaluates.
var openSLOCalendarUnits = map[string]CalendarUnit{"1w": CalendarWeek, "1M": CalendarMonth, "1Q": CalendarQuarter, "1Y": CalendarYear}

// openSLOCalendar reads a calendar window: duration 1w, 1M, 1Q or 1Y and
// calendar: {startTime: "2022-01-01 00:00:00", timeZone: UTC}, the start of
// one period in that zone.
func (d *decoder) openSLOCalendar(tw *fields, text string, n *yaml.Node) *Calendar {
	unit, ok := openSLOCalendarUnits[text]
	if !ok {
		d.errorf(n, "spec.timeWindow[0].duration: %q: calendar periods are 1w (from Monday, or the start time's weekday), 1M, 1Q or 1Y", text)
		return nil
	}
	c := &Calendar{Unit: unit, Location: time.UTC}
	cal := tw.sub("calendar", "startTime", "timeZone")
	if cal.bad || cal.mapping == nil {
		d.errorf(tw.mapping, "spec.timeWindow[0]: a calendar window (isRolling: false) needs calendar: {startTime, timeZone}")
		return nil
	}
	cal.require(cal.mapping, "", "startTime", "timeZone")
	if tz, tn := cal.str("timeZone"); tn != nil {
		if c.Location = d.timeZone(tz, tn, cal.path+".timeZone"); c.Location == nil {
			return nil
		}
	}
	if st, sn := cal.str("startTime"); sn != nil {
		t, err := time.ParseInLocation(time.DateTime, st, c.Location)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, st); err != nil {
				d.errorf(sn, "%s.startTime: %q: write a local time like \"2022-01-01 00:00:00\" (in timeZone)", cal.path, st)
				return nil
			}
		}
		c.Anchor = t
		if err := c.validate(); err != nil {
			d.errorf(sn, "%s.startTime: %s", cal.path, err)
			return nil
		}
	}
	return c
}

// openSLOObjective is one objective of an OpenSLO v1 SLO.
type openSLOObjective struct {
	objective float64
	node      *yaml.Node
	// timeslices is set for the Timeslices and RatioTimeslices methods.
	timeslices *Timeslices
	// op and value are a thresholdMetric's condition (opNode nil: none).
	op        Op
	value     float64
	opNode    *yaml.Node
	valueNode *yaml.Node
	path      string // spec.objectives[i]
}

// openSLOOps are OpenSLO's threshold operators.
var openSLOOps = map[string]Op{"lt": OpLT, "lte": OpLE, "gt": OpGT, "gte": OpGE}

// openSLOThreshold completes a thresholdMetric SLO with its objective's
// condition, or reports why it cannot be one.
func (d *decoder) openSLOThreshold(o *SLO, obj openSLOObjective, method string) {
	th := o.Indicator.Threshold
	switch {
	case th == nil && obj.valueNode != nil:
		d.errorf(obj.valueNode, "%s.value: only a thresholdMetric indicator is compared with op and value", obj.path)
	case th == nil && obj.opNode != nil:
		// OpenSLO's own examples set op on ratio objectives, where the
		// target already says which way is good.
		d.warnf(obj.opNode, "%s.op: ignored: a ratioMetric SLI is compared with target (op and value are for a thresholdMetric)", obj.path)
	case th == nil:
	case method != "Timeslices":
		d.errorf(obj.node, "%s: a thresholdMetric is judged per time slice: set budgetingMethod: Timeslices and timeSliceWindow", obj.path)
	case obj.opNode == nil || obj.valueNode == nil:
		d.errorf(obj.node, "%s: a thresholdMetric objective needs op (lt, lte, gt, gte) and value", obj.path)
	default:
		t := *th
		t.Tolerance = Tolerance{Op: obj.op, Value: obj.value}
		o.Indicator.Threshold = &t
		if o.Timeslices != nil && o.Timeslices.Target != 0 {
			d.errorf(obj.node, "%s.timeSliceTarget: a thresholdMetric slice is good when op and value hold; remove it", obj.path)
		}
	}
}

// openSLOObjectives reads the objectives; target is a ratio in OpenSLO
// (0.999) and targetPercent a percentage (99.9).
func (d *decoder) openSLOObjectives(spec *fields, method string) []openSLOObjective {
	items := spec.list("objectives")
	if len(items) == 0 {
		if n := spec.node("objectives"); n != nil && n.Kind == yaml.SequenceNode {
			d.errorf(n, "spec.objectives: one objective is required")
		}
		return nil
	}
	var out []openSLOObjective
	for i, item := range items {
		path := fmt.Sprintf("spec.objectives[%d]", i)
		if obj, ok := d.openSLOObjective(item, path, method); ok {
			obj.node = cmpNode(item, spec.node("objectives"))
			out = append(out, obj)
		}
	}
	if len(out) < len(items) {
		return nil // reported: no SLO with a missing objective
	}
	return out
}

func (d *decoder) openSLOObjective(item *yaml.Node, path, method string) (openSLOObjective, bool) {
	obj := openSLOObjective{path: path}
	of := d.fields(item, path, "displayName", "target", "targetPercent", "op", "value",
		"timeSliceTarget", "timeSliceWindow", "indicator", "indicatorRef", "compositeWeight")
	if of.bad || of.mapping == nil {
		return obj, false
	}
	for _, k := range []string{"indicator", "indicatorRef"} {
		if n := of.node(k); n != nil {
			d.errorf(n, "%s.%s: not supported: slogate reads objectives with one indicator in spec", path, k)
		}
	}
	if op, n := of.str("op"); n != nil {
		o, ok := openSLOOps[op]
		if !ok {
			d.errorf(n, "%s.op: %q: use lt, lte, gt or gte", path, op)
		}
		obj.op, obj.opNode = o, n
		obj.value, obj.valueNode, _ = of.num("value")
	} else if n := of.node("value"); n != nil {
		d.errorf(n, "%s.value: only with op, for a thresholdMetric", path)
	}
	if obj.opNode != nil && obj.valueNode == nil {
		obj.op = "" // an op without a value is not a threshold
	}
	if method == "Occurrences" {
		for _, k := range []string{"timeSliceTarget", "timeSliceWindow"} {
			if n := of.node(k); n != nil {
				d.errorf(n, "%s.%s: only with budgetingMethod Timeslices or RatioTimeslices", path, k)
			}
		}
	} else {
		ts := &Timeslices{Ratio: method == "RatioTimeslices", NoData: SliceSkip}
		of.require(of.mapping, "", "timeSliceWindow")
		if text, n := of.str("timeSliceWindow"); n != nil {
			if w, err := model.ParseDuration(text); err != nil {
				d.errorf(n, "%s.timeSliceWindow: invalid duration %q: like 1m", path, text)
			} else if ts.Window = time.Duration(w); ts.validate() != nil {
				d.errorf(n, "%s.timeSliceWindow: %s", path, ts.validate())
			}
		}
		if v, n, ok := of.num("timeSliceTarget"); ok {
			switch {
			case ts.Ratio:
				d.errorf(n, "%s.timeSliceTarget: RatioTimeslices averages the slices' ratios and has no target per slice; remove it", path)
			case v <= 0 || v >= 1:
				d.errorf(n, "%s.timeSliceTarget: %s is out of range: a ratio above 0 and below 1, like 0.95", path, formatFloat(v))
			default:
				ts.Target = v
			}
		} else if !ts.Ratio && obj.valueNode == nil && n == nil {
			d.errorf(of.mapping, "%s: timeSliceTarget is required with budgetingMethod Timeslices: the good share a slice must reach, like 0.95", path)
		}
		obj.timeslices = ts
	}
	v, ok := d.openSLOTarget(of, path)
	obj.objective = v
	return obj, ok
}

// openSLOTarget reads an objective's target or targetPercent as a percent.
func (d *decoder) openSLOTarget(of *fields, path string) (float64, bool) {
	switch {
	case of.has("target") && of.has("targetPercent"):
		d.errorf(of.mapping, "%s: set either target or targetPercent, not both", path)
	case of.has("target"):
		v, n, ok := of.num("target")
		if !ok {
			return 0, false
		}
		if v <= 0 || v >= 1 {
			d.errorf(n, "%s.target: %s is out of range: target is a ratio above 0 and below 1, like 0.999 (targetPercent takes percents)", path, formatFloat(v))
			return 0, false
		}
		// Rounding drops the float noise of the conversion (0.999*100 is
		// 99.89999999999999), so that 0.999 and 99.9 are the same objective.
		return math.Round(v*100*1e9) / 1e9, true
	case of.has("targetPercent"):
		if v, n, ok := of.num("targetPercent"); ok {
			d.checkObjective(v, n)
			return v, true
		}
	default:
		d.errorf(of.mapping, "%s: target or targetPercent is required", path)
	}
	return 0, false
}

// openSLISpec converts an SLI spec (inline or of a kind SLI document).
func (l *loader) openSLISpec(d *decoder, f *fields) Indicator {
	var ind Indicator
	if f.bad || f.mapping == nil {
		return ind
	}
	if n := f.node("thresholdMetric"); n != nil {
		if f.has("ratioMetric") {
			d.errorf(f.mapping, "%s: set either ratioMetric or thresholdMetric, not both", f.path)
			return ind
		}
		tm := f.sub("thresholdMetric", "metricSource")
		tm.require(tm.mapping, "", "metricSource")
		q, ok := l.openSLOMetricSource(d, tm, false, false)
		if ok {
			ind.Threshold = &ThresholdIndicator{Query: q}
		}
		return ind
	}
	if !f.has("ratioMetric") {
		d.errorf(f.mapping, "%s: ratioMetric is required", f.path)
		return ind
	}
	rm := f.sub("ratioMetric", "counter", "good", "bad", "total", "rawType", "raw")
	if rm.bad || rm.mapping == nil {
		return ind
	}
	counter := rm.boolean("counter", false)
	query := func(name string) (string, bool) {
		return l.openSLOMetricSource(d, rm.sub(name, "metricSource"), counter, true)
	}
	switch {
	case rm.has("raw"):
		if rm.has("good") || rm.has("bad") || rm.has("total") {
			d.errorf(rm.mapping, "%s: set either raw or good/bad with total, not both", rm.path)
		}
		rawType, n := rm.str("rawType")
		q, _ := query("raw")
		ind.Raw = &RawIndicator{ErrorRatio: q}
		switch {
		case n == nil:
			d.errorf(rm.mapping, "%s: rawType (failure or success) is required with raw", rm.path)
		case rawType == "success":
			if q != "" {
				ind.Raw.ErrorRatio = "1 - (" + q + ")"
			}
		case rawType != "failure":
			d.errorf(n, "%s.rawType: unknown value %q; use failure or success", rm.path, rawType)
		}
	default:
		switch {
		case rm.has("good") && rm.has("bad"):
			d.errorf(rm.mapping, "%s: set either good or bad, not both", rm.path)
		case !rm.has("good") && !rm.has("bad"):
			d.errorf(rm.mapping, "%s: good or bad is required", rm.path)
		}
		rm.require(rm.mapping, "", "total")
		ind.Ratio = &RatioIndicator{}
		if rm.has("good") {
			ind.Ratio.Good, _ = query("good")
		}
		if rm.has("bad") {
			ind.Ratio.Errors, _ = query("bad")
		}
		if rm.has("total") {
			ind.Ratio.Total, _ = query("total")
		}
	}
	return ind
}

// openSLODataSource reads a DataSource for its name and type.
func (l *loader) openSLODataSource(d *decoder, top *fields, root *yaml.Node) {
	m, _ := d.metadata(top, root, "OpenSLO DataSource", "displayName")
	top.require(root, m.what, "spec")
	spec := top.sub("spec", "type", "connectionDetails", "description")
	spec.require(root, m.what, "type")
	typ, n := spec.str("type")
	if n == nil {
		return
	}
	l.define(d, kindDataSource, m.name, m.nameNode, &openSLODataSource{typ: typ, node: n})
}

// openSLOMetricSource reads the query of a metricSource under mf: checked
// to be a Prometheus-compatible source, rewritten for counters (rate over
// {{.window}}) when templated, and validated at the node the user wrote.
func (l *loader) openSLOMetricSource(d *decoder, mf *fields, counter, templated bool) (string, bool) {
	ms := mf.sub("metricSource", "metricSourceRef", "type", "spec")
	mf.require(mf.mapping, "", "metricSource")
	if t, n := ms.str("type"); n != nil && !isPrometheusCompatible(t) {
		d.errorf(n, "%s.type: metric source %q is not supported: slogate queries Prometheus-compatible backends (%s)", ms.path, t, strings.Join(prometheusCompatible, ", "))
		return "", false
	}
	if ref, n := ms.str("metricSourceRef"); n != nil && !ms.has("type") {
		// The type is the DataSource's: checked once it is loaded.
		path := ms.path + ".metricSourceRef"
		l.referOptional(d, n, path, kindDataSource, ref, func(target any) {
			if ds := target.(*openSLODataSource); !isPrometheusCompatible(ds.typ) {
				d.errorf(n, "%s: DataSource %q is of type %q (line %d): slogate queries Prometheus-compatible backends only (%s)",
					path, ref, ds.typ, ds.node.Line, strings.Join(prometheusCompatible, ", "))
			}
		})
	}
	ms.require(ms.mapping, "", "spec")
	sp := ms.sub("spec", "query")
	sp.require(sp.mapping, "", "query")
	n := sp.node("query")
	if n == nil || n.Kind != yaml.ScalarNode {
		d.query(n, sp.path+".query", templated) // reports the type
		return "", false
	}
	if !templated {
		return d.query(n, sp.path+".query", false)
	}
	// Validate the rewritten query at the node the user wrote.
	rewritten := *n
	rewritten.Value = openSLOQuery(n.Value, counter)
	return d.query(&rewritten, sp.path+".query", true)
}
