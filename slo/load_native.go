package slo

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// Defaults of native SLO fields that may be left out.
const (
	// DefaultWindow is the SLO window when none is given: 30 days, the SRE
	// workbook's and Sloth's default, for which the alert factors are the
	// textbook 14.4/6/3/1.
	DefaultWindow = 30 * 24 * time.Hour
	// DefaultBurnRateWindow is the window of gate and probe burn-rate checks.
	DefaultBurnRateWindow = time.Hour

	// MinWindow and MaxWindow bound an SLO window.
	MinWindow = time.Hour
	MaxWindow = 90 * 24 * time.Hour
)

// meta is a decoded metadata block.
type meta struct {
	name     string
	nameNode *yaml.Node
	labels   map[string]string
	what     string // `SLO "name"`, how messages about the document start
}

// metadata reads metadata {name, labels, annotations} but for the labels,
// which the caller reads from the returned fields (OpenSLO writes them
// differently); extra names further fields a format allows.
func (d *decoder) metadata(top *fields, root *yaml.Node, kind string, extra ...string) (meta, *fields) {
	mf := top.sub("metadata", append([]string{"name", "labels", "annotations"}, extra...)...)
	m := meta{what: kind}
	m.name, m.nameNode = mf.str("name")
	if m.name != "" {
		m.what = fmt.Sprintf("%s %q", kind, m.name)
		if msg := checkName(m.name); msg != "" {
			d.errorf(m.nameNode, "metadata.name: %q %s", m.name, msg)
		}
	} else if m.nameNode != nil {
		d.errorf(m.nameNode, "metadata.name: must not be empty")
	} else if !mf.has("name") && !mf.bad {
		// A name of the wrong type, or metadata that is not a mapping, was
		// reported already: "required" would be wrong.
		d.errorf(root, "%s: metadata.name is required", kind)
	}
	mf.annotations("annotations")
	return m, mf
}

// annotations reads a map of annotation names to text. Annotations are
// free-form documentation, so only their shape is checked.
func (f *fields) annotations(name string) map[string]string {
	n := f.node(name)
	if n == nil {
		return nil
	}
	path := joinPath(f.path, name)
	if n.Kind != yaml.MappingNode {
		f.d.errorf(n, "%s: expected a mapping of names to text, got %s", path, yamlnode.Describe(n))
		return nil
	}
	out := map[string]string{}
	pairs := f.d.mergedPairs(n, path)
	for i := 0; i+1 < len(pairs); i += 2 {
		k, v := pairs[i], f.d.resolve(pairs[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			f.d.errorf(k, "%s: keys must be strings, got %s", path, yamlnode.Describe(k))
		case v == nil:
			out[k.Value] = ""
		case v.Kind != yaml.ScalarNode:
			f.d.errorf(v, "%s.%s: expected a string, got %s", path, k.Value, yamlnode.Describe(v))
		default:
			out[k.Value] = v.Value
		}
	}
	return out
}

// native decodes a slogate.dev/v1 document.
func (l *loader) native(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec")
	kind, kindNode := top.str("kind")
	kinds := []string{KindSLO, KindHypothesis, KindExperiment}
	switch kind {
	case KindSLO, KindHypothesis, KindExperiment:
	case "":
		switch {
		case kindNode != nil:
			d.errorf(kindNode, "kind: must not be empty")
		case !top.has("kind"): // else present but not a string: reported by str
			d.errorf(root, "kind is required (SLO, Hypothesis or Experiment)")
		}
		return
	default:
		d.errorf(kindNode, "unknown kind %q: use SLO, Hypothesis or Experiment%s", kind, didYouMean(kind, kinds))
		return
	}
	reserved := []string(nil)
	if kind == KindSLO {
		reserved = reservedSLOLabels
	}
	m, mf := d.metadata(top, root, kind)
	m.labels = mf.labels("labels", reserved...)
	top.require(root, m.what, "spec")
	switch kind {
	case KindSLO:
		o := l.nativeSLO(d, top, root, m)
		l.set.SLOs = append(l.set.SLOs, o)
		l.define(d, KindSLO, m.name, m.nameNode, o)
	case KindHypothesis:
		h := l.hypothesis(d, top, root, m)
		l.set.Hypotheses = append(l.set.Hypotheses, h)
		l.define(d, KindHypothesis, m.name, m.nameNode, h)
	case KindExperiment:
		e := l.experiment(d, top, root, m)
		l.set.Experiments = append(l.set.Experiments, e)
		l.define(d, KindExperiment, m.name, m.nameNode, e)
	}
}

func (l *loader) nativeSLO(d *decoder, top *fields, root *yaml.Node, m meta) *SLO {
	spec := top.sub("spec", "service", "description", "objective", "window", "timeslices", "indicator", "groupBy", "maxGroups", "alerting", "gate", "rules")
	o := &SLO{Name: m.name, Labels: m.labels, Pos: d.pos(root), Source: Source{Format: FormatNative}}
	spec.require(root, m.what, "service", "objective", "indicator")
	o.Service, _ = spec.str("service")
	o.Description, _ = spec.str("description")
	if v, n, ok := spec.num("objective"); ok {
		o.Objective = v
		d.checkObjective(v, n)
	}
	o.Window = DefaultWindow
	if n := spec.node("window"); n != nil && n.Kind == yaml.MappingNode {
		o.Calendar = d.nativeCalendar(spec.sub("window", "calendar", "timeZone", "start"))
		if o.Calendar != nil {
			o.Window = o.Calendar.Unit.Longest()
		}
	} else if n != nil && n.Kind == yaml.ScalarNode && slices.Contains(CalendarUnits, CalendarUnit(n.Value)) {
		d.errorf(n, "spec.window: %q: a calendar window is written window: {calendar: %s, timeZone: UTC}; a rolling one as a duration like 30d", n.Value, n.Value)
	} else if w, n, ok := spec.duration("window"); ok {
		o.Window = w
		d.checkWindow(w, n, "spec.window")
	}
	o.Indicator = d.indicator(spec.sub("indicator", "ratio", "latency", "raw", "threshold"))
	if spec.has("timeslices") {
		o.Timeslices = d.nativeTimeslices(spec.sub("timeslices", "window", "target", "method", "noData"), o.Indicator.Threshold != nil)
	} else if o.Indicator.Threshold != nil {
		d.errorf(spec.node("indicator"), "spec.indicator.threshold: a threshold is judged per time slice: set spec.timeslices: {window: 1m}")
	}
	o.GroupBy, o.MaxGroups = d.groupBy(spec)
	alerting := spec.sub("alerting", "enabled", "name", "labels", "annotations", "page", "ticket", "minEvents")
	o.Alerting = d.alerting(alerting)
	gate := spec.sub("gate", "minBudgetRemaining", "maxBurnRate", "burnRateWindow", "onIncompleteWindow", "groups", "minEvents", "onLowTraffic")
	o.Gate = d.gate(gate, o.Window)
	if o.Indicator.Raw != nil || o.Timeslices != nil {
		// Events of a raw ratio are seconds, and a time-slice SLO counts
		// slices: neither has requests to be too few.
		what := "a raw error ratio counts seconds, not requests"
		if o.Timeslices != nil {
			what = "a time-slice SLO counts slices, not requests"
		}
		for path, n := range map[string]*yaml.Node{"spec.alerting": alerting.node("minEvents"), "spec.gate": gate.node("minEvents"),
			"spec.alerting.page": tierNode(alerting, "page"), "spec.alerting.ticket": tierNode(alerting, "ticket")} {
			if n != nil {
				d.errorf(n, "%s.minEvents: %s, so there are no events to be too few; guard a ratio or latency SLO instead", path, what)
			}
		}
	}
	if o.Gate.Groups != "" && len(o.GroupBy) == 0 {
		d.errorf(gate.node("groups"), "spec.gate.groups: the SLO has no groups; set spec.groupBy: [label, ...] or remove gate.groups")
	}
	rules := spec.sub("rules", "intervals", "infoLabels")
	iv := rules.sub("intervals", "sliError", "metadata", "alert")
	for name, dst := range map[string]*time.Duration{"sliError": &o.RuleIntervals.SLIError, "metadata": &o.RuleIntervals.Metadata, "alert": &o.RuleIntervals.Alert} {
		if v, n, ok := iv.duration(name); ok {
			if v <= 0 {
				d.errorf(n, "%s.%s: must be positive", iv.path, name)
			}
			*dst = v
		}
	}
	o.InfoLabels = rules.infoLabels("infoLabels")
	return o
}

// nativeTimeslices reads timeslices: {window: 1m, target: 99%, method:
// timeslices | ratioTimeslices, noData: skip | good | bad}. A threshold
// indicator judges slices by its tolerance and takes no target.
func (d *decoder) nativeTimeslices(f *fields, threshold bool) *Timeslices {
	if f.bad || f.mapping == nil {
		return nil
	}
	ts := &Timeslices{NoData: SliceSkip}
	f.require(f.mapping, "", "window")
	if w, n, ok := f.duration("window"); ok {
		ts.Window = w
		if err := ts.validate(); err != nil {
			d.errorf(n, "%s.window: %s", f.path, err)
		}
	}
	if m, n := f.str("method"); n != nil {
		switch m {
		case "timeslices":
		case "ratioTimeslices":
			ts.Ratio = true
		default:
			d.errorf(n, "%s.method: unknown value %q; use timeslices (the share of good slices) or ratioTimeslices (the mean of the slices' ratios)", f.path, m)
		}
	}
	if v, n := f.str("noData"); n != nil {
		switch p := SliceNoData(v); p {
		case SliceSkip, SliceGood, SliceBad:
			ts.NoData = p
		default:
			d.errorf(n, "%s.noData: unknown value %q; use skip, good or bad", f.path, v)
		}
	}
	target, tn, hasTarget := f.ratio("target")
	switch {
	case threshold && ts.Ratio:
		d.errorf(f.mapping, "%s: a threshold indicator has no ratio to average: use method timeslices", f.path)
	case threshold && hasTarget:
		d.errorf(tn, "%s.target: a threshold indicator's slice is good when its tolerance holds; remove target", f.path)
	case ts.Ratio && hasTarget:
		d.errorf(tn, "%s.target: ratioTimeslices averages the slices' ratios and has no target per slice; remove it", f.path)
	case !threshold && !ts.Ratio && !hasTarget:
		d.errorf(f.mapping, "%s: target is required: the good share a slice must reach, like 99%%", f.path)
	case hasTarget && (target <= 0 || target >= 1):
		d.errorf(tn, "%s.target: must be above 0%% and below 100%%", f.path)
	}
	ts.Target = target
	return ts
}

// nativeCalendar reads window: {calendar: month, timeZone: Europe/Berlin},
// and optionally start: the local time one period starts (default: the
// unit's natural start, the 1st of the month, Monday... at midnight).
func (d *decoder) nativeCalendar(f *fields) *Calendar {
	if f.bad || f.mapping == nil {
		return nil
	}
	f.require(f.mapping, "", "calendar")
	unit, un := f.str("calendar")
	if un == nil {
		return nil
	}
	c := &Calendar{Unit: CalendarUnit(unit), Location: time.UTC}
	ok := slices.Contains(CalendarUnits, c.Unit)
	if !ok {
		d.errorf(un, "%s.calendar: %q: use week (from Monday), month, quarter or year", f.path, unit)
	}
	if tz, n := f.str("timeZone"); n != nil {
		c.Location = d.timeZone(tz, n, f.path+".timeZone")
		ok = ok && c.Location != nil
	}
	if st, sn := f.str("start"); sn != nil && ok {
		t, err := time.ParseInLocation(time.DateTime, st, c.Location)
		if err != nil {
			d.errorf(sn, "%s.start: %q: write the local time one period starts, like \"2026-01-15 00:00:00\" (in timeZone)", f.path, st)
			return nil
		}
		c.Anchor = t
		if err := c.validate(); err != nil {
			d.errorf(sn, "%s.start: %s", f.path, err)
			return nil
		}
	}
	if !ok {
		return nil
	}
	return c
}

// timeZone loads an IANA time zone; nil (reported) if unknown.
func (d *decoder) timeZone(name string, n *yaml.Node, path string) *time.Location {
	if name == "" || name == "Local" {
		d.errorf(n, "%s: %q: name a time zone, like UTC or Europe/Berlin", path, name)
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		d.errorf(n, "%s: unknown time zone %q: use an IANA name like UTC, Europe/Berlin or America/New_York", path, name)
		return nil
	}
	return loc
}

// checkObjective accepts percents strictly between 0 and 100, and warns
// about values below 1, which are almost always ratios written by mistake.
func (d *decoder) checkObjective(v float64, n *yaml.Node) {
	switch {
	case v <= 0 || v >= 100:
		d.errorf(n, "objective %s is out of range: it is a percentage above 0 and below 100, like 99.9", formatFloat(v))
	case v < 1:
		d.warnf(n, "objective %s is in percent: did you mean %s?", formatFloat(v), formatFloat(math.Round(v*100*1e9)/1e9))
	}
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (d *decoder) checkWindow(w time.Duration, n *yaml.Node, path string) {
	if w < MinWindow || w > MaxWindow {
		d.errorf(n, "%s: %s is out of range: an SLO window is between %s and %s",
			path, FormatDuration(w), FormatDuration(MinWindow), FormatDuration(MaxWindow))
	}
}

// indicator reads exactly one of ratio, latency and raw.
func (d *decoder) indicator(f *fields) Indicator {
	var ind Indicator
	var set []string
	for _, k := range []string{"ratio", "latency", "raw", "threshold"} {
		if f.has(k) {
			set = append(set, k)
		}
	}
	switch {
	case f.bad || f.mapping == nil:
		return ind
	case len(set) == 0:
		d.errorf(f.mapping, "%s: set one of ratio, latency, raw or threshold", f.path)
		return ind
	case len(set) > 1:
		d.errorf(f.mapping, "%s: set only one of ratio, latency, raw and threshold, not %s and %s", f.path, set[0], set[1])
	}
	if f.has("threshold") {
		tf := f.sub("threshold", "query", "tolerance")
		tf.require(tf.mapping, "", "query", "tolerance")
		ind.Threshold = &ThresholdIndicator{}
		ind.Threshold.Query, _ = d.query(tf.node("query"), tf.path+".query", false)
		if n := tf.node("tolerance"); n != nil {
			ind.Threshold.Tolerance, _ = d.tolerance(n, tf.path+".tolerance")
		}
	}
	if f.has("ratio") {
		r := f.sub("ratio", "errors", "good", "total")
		ind.Ratio = &RatioIndicator{}
		switch {
		case r.has("errors") && r.has("good"):
			d.errorf(r.mapping, "%s: set either errors or good, not both", r.path)
		case !r.has("errors") && !r.has("good") && !r.bad:
			d.errorf(r.mapping, "%s: errors or good is required", r.path)
		}
		r.require(r.mapping, "", "total")
		ind.Ratio.Errors, _ = d.query(r.node("errors"), r.path+".errors", true)
		ind.Ratio.Good, _ = d.query(r.node("good"), r.path+".good", true)
		ind.Ratio.Total, _ = d.query(r.node("total"), r.path+".total", true)
	}
	if f.has("latency") {
		lf := f.sub("latency", "histogram", "threshold", "native")
		ind.Latency = &LatencyIndicator{}
		lf.require(lf.mapping, "", "histogram", "threshold")
		ind.Latency.Histogram, _ = d.seriesSelector(lf.node("histogram"), lf.path+".histogram")
		if v, n, ok := lf.num("threshold"); ok {
			ind.Latency.Threshold = v
			if v <= 0 {
				d.errorf(n, "%s.threshold: %s is not a positive number of seconds", lf.path, formatFloat(v))
			}
		}
		ind.Latency.Native = lf.boolean("native", false)
	}
	if f.has("raw") {
		rf := f.sub("raw", "errorRatio")
		ind.Raw = &RawIndicator{}
		rf.require(rf.mapping, "", "errorRatio")
		ind.Raw.ErrorRatio, _ = d.query(rf.node("errorRatio"), rf.path+".errorRatio", true)
	}
	return ind
}

// reservedAlertLabels are set on every alert by slogate.
var reservedAlertLabels = []string{"alertname", "slo", "service"}

// alerting reads the alerting block; alerts and both tiers are on unless
// turned off, since an SLO nobody is told about is rarely what was meant.
func (d *decoder) alerting(f *fields) Alerting {
	a := Alerting{Enabled: f.boolean("enabled", true), Name: DefaultAlertName}
	if name, n := f.str("name"); n != nil {
		a.Name = name
		if msg := checkAlertName(name); msg != "" {
			d.errorf(n, "%s.name: %s", f.path, msg)
		}
	}
	a.Labels = f.labels("labels", reservedAlertLabels...)
	a.Annotations = f.annotations("annotations")
	minEvents := d.minEvents(f)
	a.Page = d.alertTier(f.sub("page", "enabled", "labels", "annotations", "minEvents"), minEvents)
	a.Ticket = d.alertTier(f.sub("ticket", "enabled", "labels", "annotations", "minEvents"), minEvents)
	return a
}

func (d *decoder) alertTier(f *fields, minEvents float64) AlertTier {
	t := AlertTier{
		Enabled:     f.boolean("enabled", true),
		Labels:      f.labels("labels", reservedAlertLabels...),
		Annotations: f.annotations("annotations"),
		MinEvents:   minEvents,
	}
	if f.has("minEvents") {
		t.MinEvents = d.minEvents(f)
	}
	return t
}

// tierNode is the minEvents node of an alert tier's mapping, if any.
func tierNode(alerting *fields, tier string) *yaml.Node {
	n := alerting.node(tier)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "minEvents" {
			return n.Content[i+1]
		}
	}
	return nil
}

// minEvents reads a low-traffic guard: a count of events, 0 when absent.
func (d *decoder) minEvents(f *fields) float64 {
	v, n, ok := f.num("minEvents")
	if !ok {
		return 0
	}
	if v < 0 {
		d.errorf(n, "%s.minEvents: %s must not be negative", f.path, n.Value)
		return 0
	}
	return v
}

func (d *decoder) gate(f *fields, sloWindow time.Duration) GatePolicy {
	g := GatePolicy{BurnRateWindow: DefaultBurnRateWindow, MinEvents: d.minEvents(f)}
	g.OnLowTraffic = Policy(f.enum("onLowTraffic", "", "pass", "fail", "unknown"))
	if v, _, ok := f.ratio("minBudgetRemaining"); ok {
		g.MinBudgetRemaining = &v
	}
	if v, n, ok := f.num("maxBurnRate"); ok {
		if v <= 0 {
			d.errorf(n, "%s.maxBurnRate: %s is not above 0", f.path, formatFloat(v))
		} else {
			g.MaxBurnRate = &v
		}
	}
	if v, n := f.str("onIncompleteWindow"); n != nil {
		switch p := IncompletePolicy(v); p {
		case IncompleteUnknown, IncompletePartial:
			g.OnIncompleteWindow = p
		default:
			d.errorf(n, "%s.onIncompleteWindow: unknown value %q; use unknown or partial", f.path, v)
		}
	}
	if v, n := f.str("groups"); n != nil {
		switch p := GroupPolicy(v); p {
		case GroupsEach, GroupsAggregate:
			g.Groups = p
		default:
			d.errorf(n, "%s.groups: unknown value %q; use each (one failing group closes the gate) or aggregate (only the SLO over all groups decides)", f.path, v)
		}
	}
	if w, n, ok := f.duration("burnRateWindow"); ok {
		g.BurnRateWindow = w
		if !evaluatedWindow(w, sloWindow) {
			d.errorf(n, "%s.burnRateWindow: burn rates are not evaluated over %s; use one of %s",
				f.path, FormatDuration(w), windowList(sloWindow))
		}
	}
	return g
}

// groupBy reads spec.groupBy: [label, ...] and spec.maxGroups.
func (d *decoder) groupBy(spec *fields) ([]string, int) {
	by, nodes := spec.strList("groupBy")
	for i := range by {
		if msg := checkGroupBy(by[:i+1]); msg != "" {
			d.errorf(nodes[i], "spec.groupBy[%d]: %s", i, msg)
			return nil, 0
		}
	}
	if n := spec.node("groupBy"); n != nil && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errorf(n, "spec.groupBy: an empty list groups nothing; list labels, like [cluster, route], or remove it")
	}
	maxGroups := 0
	if v, n, ok := spec.num("maxGroups"); ok {
		switch {
		case len(by) == 0:
			d.errorf(n, "spec.maxGroups: the SLO has no groups; set spec.groupBy or remove maxGroups")
		case v != float64(int(v)) || v < 1 || v > MaxMaxGroups:
			d.errorf(n, "spec.maxGroups: %s: must be a whole number from 1 to %d", formatFloat(v), MaxMaxGroups)
		default:
			maxGroups = int(v)
		}
	}
	return by, maxGroups
}
