package slo

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// slothSpelling names the fields of Sloth's two forms of one spec: the
// prometheus/v1 file (snake_case) and the Kubernetes CRD (camelCase).
type slothSpelling struct {
	form                               string // for messages
	format                             Format
	sloPlugins                         string
	errorQuery, totalQuery, errorRatio string
	pageAlert, ticketAlert             string
	// aliases are the other form's names of the alert tiers, which Sloth
	// also accepts (its own validate fixtures use them): read with a warning.
	pageAlias, ticketAlias string
}

var (
	slothFile = slothSpelling{
		form: "Sloth spec", format: FormatSloth, sloPlugins: "slo_plugins",
		errorQuery: "error_query", totalQuery: "total_query", errorRatio: "error_ratio_query",
		pageAlert: "page_alert", ticketAlert: "ticket_alert", pageAlias: "pageAlert", ticketAlias: "ticketAlert",
	}
	slothCRD = slothSpelling{
		form: "PrometheusServiceLevel", format: FormatSlothCRD, sloPlugins: "sloPlugins",
		errorQuery: "errorQuery", totalQuery: "totalQuery", errorRatio: "errorRatioQuery",
		pageAlert: "pageAlert", ticketAlert: "ticketAlert", pageAlias: "page_alert", ticketAlias: "ticket_alert",
	}
)

// sloth decodes a Sloth spec (version: prometheus/v1). Sloth groups the SLOs
// of one service, and its SLO names are only unique within that service,
// so each SLO is named "<service>-<slo name>" (Sloth's own sloth_id is the
// same pair). The window is Sloth's default, 30 days; the queries keep their
// {{.window}} templates; service labels and SLO labels are merged (the
// SLO's win), as Sloth does; alerting is on and named as Sloth names it,
// page_alert/ticket_alert map to the page/ticket tiers, disable: true
// turning one off. Event queries that both aggregate by the same labels
// (sum by (cluster) (...)) make the SLO one SLO per group, as Sloth's
// rules do (groups_formats.go). Sloth's SLI plugins cannot be evaluated
// here and are errors.
func (l *loader) sloth(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "version", "service", "labels", "slos", slothFile.sloPlugins)
	top.require(root, "Sloth spec", "service", "slos")
	l.slothService(d, top, slothFile)
}

// slothCRD decodes Sloth's Kubernetes resource (apiVersion: sloth.slok.dev/v1,
// kind: PrometheusServiceLevel): the same spec under spec:, camelCase. The
// resource's metadata names the Kubernetes object, not the SLOs, and is
// read for its shape only; status is Sloth's controller's and is ignored.
func (l *loader) slothCRD(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec", "status")
	top.require(root, "PrometheusServiceLevel", "spec")
	top.sub("metadata", "name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
		"creationTimestamp", "deletionTimestamp", "generateName", "managedFields", "finalizers", "ownerReferences")
	spec := top.sub("spec", "service", "labels", "slos", slothCRD.sloPlugins)
	spec.require(spec.mapping, "spec", "service", "slos")
	l.slothService(d, spec, slothCRD)
}

func (l *loader) slothService(d *decoder, top *fields, sp slothSpelling) {
	service, serviceNode := top.str("service")
	if serviceNode != nil && service == "" {
		d.errorf(serviceNode, "%s: must not be empty", joinPath(top.path, "service"))
	}
	labels := top.labels("labels", reservedSLOLabels...)
	servicePlugins, _ := d.slothPlugins(top, sp.sloPlugins)
	items := top.list("slos")
	if top.has("slos") && len(items) == 0 && top.node("slos").Kind == yaml.SequenceNode {
		d.errorf(top.node("slos"), "%s: at least one SLO is required", joinPath(top.path, "slos"))
	}
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", joinPath(top.path, "slos"), i)
		if item == nil {
			d.errorf(top.node("slos"), "%s: expected an SLO, got null", path)
			continue
		}
		l.slothSLO(d, item, path, service, labels, servicePlugins, sp)
	}
}

func (l *loader) slothSLO(d *decoder, item *yaml.Node, path, service string, serviceLabels map[string]string, servicePlugins []slothPluginUse, sp slothSpelling) {
	f := d.fields(item, path, "name", "description", "objective", "labels", "sli", "alerting", "plugins")
	if f.bad {
		return
	}
	f.require(item, "", "name", "objective", "sli")
	ownPlugins, override := d.slothPlugins(f, "plugins")
	o := &SLO{Service: service, Window: l.opts.SlothPeriod, Pos: d.pos(item), Gate: GatePolicy{BurnRateWindow: DefaultBurnRateWindow}, Source: Source{Format: sp.format}}
	name, nameNode := f.str("name")
	if nameNode != nil {
		o.Name, o.Source.Name = service+"-"+name, name
		if msg := checkName(o.Name); msg != "" {
			d.errorf(nameNode, "%s.name: SLO name %q (service-name) %s", path, o.Name, msg)
		}
	}
	o.Description, _ = f.str("description")
	if v, n, ok := f.num("objective"); ok {
		o.Objective = v
		d.checkObjective(v, n)
	}
	labels := f.labels("labels", reservedSLOLabels...)
	if len(serviceLabels)+len(labels) > 0 {
		o.Labels = maps.Clone(serviceLabels)
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		maps.Copy(o.Labels, labels)
	}

	sli := f.sub("sli", "events", "raw", "plugin")
	switch {
	case sli.has("plugin"):
		id, _ := sli.sub("plugin", "id", "options").str("id")
		d.errorf(sli.node("plugin"), "%s.sli.plugin: Sloth SLI plugin %q is Go code that slogate cannot run: write what it computes as queries, "+
			"sli.events {%s, %s} (failed and all events per second, with {{.window}}) or sli.raw {%s}", path, id, sp.errorQuery, sp.totalQuery, sp.errorRatio)
	case sli.has("events") && sli.has("raw"):
		d.errorf(sli.mapping, "%s.sli: set only one of events and raw", path)
	case !sli.has("events") && !sli.has("raw") && sli.mapping != nil && !sli.bad:
		d.errorf(sli.mapping, "%s.sli: set events or raw", path)
	}
	if sli.has("events") {
		ev := sli.sub("events", sp.errorQuery, sp.totalQuery)
		ev.require(ev.mapping, "", sp.errorQuery, sp.totalQuery)
		r := &RatioIndicator{}
		o.Indicator.Ratio = r
		var okErr, okTotal bool
		r.Errors, okErr = d.query(ev.node(sp.errorQuery), ev.path+"."+sp.errorQuery, true)
		r.Total, okTotal = d.query(ev.node(sp.totalQuery), ev.path+"."+sp.totalQuery, true)
		switch e, t := ev.node(sp.errorQuery), ev.node(sp.totalQuery); {
		case e != nil && t != nil && r.Errors != "" && strings.TrimSpace(r.Errors) == strings.TrimSpace(r.Total):
			d.errorf(t, "%s.%s: the same query as %s: the error ratio would always be 1 (Sloth refuses this too); select the failed events in %s",
				ev.path, sp.totalQuery, sp.errorQuery, sp.errorQuery)
		case okErr && okTotal:
			o.GroupBy = d.slothGroupBy(ev, sp, r)
		}
	} else if sli.has("raw") {
		raw := sli.sub("raw", sp.errorRatio)
		raw.require(raw.mapping, "", sp.errorRatio)
		o.Indicator.Raw = &RawIndicator{}
		o.Indicator.Raw.ErrorRatio, _ = d.query(raw.node(sp.errorRatio), raw.path+"."+sp.errorRatio, true)
	}

	af := f.sub("alerting", "name", "labels", "annotations", sp.pageAlert, sp.ticketAlert, sp.pageAlias, sp.ticketAlias)
	o.Alerting = Alerting{Enabled: true, Name: DefaultAlertName}
	if an, n := af.str("name"); n != nil {
		o.Alerting.Name = an
		if msg := checkAlertName(an); msg != "" {
			d.errorf(n, "%s.name: %s", af.path, msg)
		}
	}
	o.Alerting.Labels = af.labels("labels", reservedAlertLabels...)
	o.Alerting.Annotations = af.annotations("annotations")
	d.slothTemplateLabels(af, "annotations")
	o.Alerting.Page = slothTier(d, af, sp.pageAlert, sp.pageAlias, sp.form)
	o.Alerting.Ticket = slothTier(d, af, sp.ticketAlert, sp.ticketAlias, sp.form)

	applySlothPlugins(o, servicePlugins, ownPlugins, override)
	l.set.SLOs = append(l.set.SLOs, o)
	l.define(d, KindSLO, o.Name, nameNode, o)
}

// slothTier reads one alert tier, under its own name or the other form's.
func slothTier(d *decoder, af *fields, name, alias, form string) AlertTier {
	if af.has(alias) {
		if af.has(name) {
			d.errorf(af.keys[alias], "%s: set %s or %s, not both", af.path, name, alias)
		} else {
			d.warnf(af.keys[alias], "%s.%s: read as %s, its spelling in a %s", af.path, alias, name, form)
			name = alias
		}
	}
	f := af.sub(name, "disable", "labels", "annotations")
	d.slothTemplateLabels(f, "annotations")
	return AlertTier{
		Enabled:     !f.boolean("disable", false),
		Labels:      f.labels("labels", reservedAlertLabels...),
		Annotations: f.annotations("annotations"),
	}
}

// slothPlugins are the SLO plugin ids Sloth ships, with what reading them
// means here. None of them changes what slogate evaluates: they shape
// Sloth's generated rules (metadata, intervals, the denominator), validate
// for Sloth's backends or log. Those in slothAppliedPlugins carry over into
// `slogate rules`; the others are accepted with a warning that says why.
var slothPlugins = map[string]string{
	"sloth.dev/core/debug/v1":                           "it only logs in Sloth",
	"sloth.dev/core/noop/v1":                            "it does nothing",
	"sloth.dev/core/validate/v1":                        "slogate validates every SLO itself",
	"sloth.dev/core/sli_rules/v1":                       "slogate evaluates the SLI itself; `slogate rules` writes the SLI rules",
	"sloth.dev/core/metadata_rules/v1":                  "`slogate rules` writes its own metadata rules",
	"sloth.dev/core/alert_rules/v1":                     "slogate evaluates the burn-rate alerts itself; `slogate rules` writes the alert rules",
	"sloth.dev/contrib/info_labels/v1":                  "applied: the labels go on sloth_slo_info in `slogate rules --style sloth` (spec.rules.infoLabels)",
	"sloth.dev/contrib/rule_intervals/v1":               "applied: the intervals of the rule groups of `slogate rules` (spec.rules.intervals)",
	"sloth.dev/contrib/denominator_corrected_rules/v1":  "it only changes how Sloth's rules average the long windows; slogate counts events exactly",
	"sloth.dev/contrib/validate_victoria_metrics/v1":    "it only validates the queries for VictoriaMetrics",
	"sloth.dev/contrib/remove_labels/v1":                "it only removes labels from Sloth's generated rules",
	"sloth.dev/contrib/error_budget_exhausted_alert/v1": "it only adds an alert to Sloth's generated rules",
}

// slothPlugins reads a plugins block (chain of {id, config, priority} and
// overridePrevious): known ids are accepted with a warning that says what
// is not done, unknown ids are errors.
func (d *decoder) slothPlugins(parent *fields, name string) (uses []slothPluginUse, override bool) {
	if !parent.has(name) {
		return nil, false
	}
	f := parent.sub(name, "chain", "overridePrevious")
	override = f.boolean("overridePrevious", false)
	for i, item := range f.list("chain") {
		path := fmt.Sprintf("%s.chain[%d]", f.path, i)
		p := d.fields(item, path, "id", "config", "priority")
		if p.bad || p.mapping == nil {
			continue
		}
		p.require(p.mapping, "", "id")
		id, idNode := p.str("id")
		if idNode == nil {
			continue
		}
		if why, ok := slothPlugins[id]; ok {
			use := slothPluginUse{id: id, path: path, config: p.node("config")}
			use.priority, _, _ = p.num("priority")
			if applied, ok := slothAppliedPlugins[id]; ok {
				if !applied(d, &use) {
					continue
				}
			} else {
				d.warnf(idNode, "%s.id: Sloth plugin %q is accepted and not applied: %s", path, id, why)
			}
			uses = append(uses, use)
			continue
		}
		d.errorf(idNode, "%s.id: unknown Sloth plugin %q: slogate runs no plugin code; it knows Sloth's own plugins (%s). "+
			"Remove it, or express what it does in the SLO itself (sli.events or sli.raw for the queries, labels for labels)",
			path, id, strings.Join(slices.Sorted(maps.Keys(slothPlugins)), ", "))
	}
	return uses, override
}

// slothPluginUse is one entry of a plugin chain that slogate applies.
type slothPluginUse struct {
	id       string
	path     string
	config   *yaml.Node
	priority float64
	apply    func(o *SLO)
}

// slothAppliedPlugins are the Sloth plugins whose meaning slogate carries
// over into `slogate rules`: each reads its config (reporting problems at
// their place) and sets what it applies; false when the config is wrong.
var slothAppliedPlugins = map[string]func(d *decoder, u *slothPluginUse) bool{
	"sloth.dev/contrib/rule_intervals/v1": func(d *decoder, u *slothPluginUse) bool {
		c := d.fields(u.config, u.path+".config", "interval")
		iv := c.sub("interval", "default", "sliError", "metadata", "alert")
		var ri RuleIntervals
		def, _, ok := iv.duration("default")
		if !ok && !iv.bad {
			d.errorf(cmpNode(iv.mapping, u.config), "%s.config.interval.default is required (Sloth requires it)", u.path)
			return false
		}
		ri.SLIError, ri.Metadata, ri.Alert = def, def, def
		for name, dst := range map[string]*time.Duration{"sliError": &ri.SLIError, "metadata": &ri.Metadata, "alert": &ri.Alert} {
			if v, _, ok := iv.duration(name); ok {
				*dst = v
			}
		}
		u.apply = func(o *SLO) { o.RuleIntervals = ri }
		return true
	},
	"sloth.dev/contrib/info_labels/v1": func(d *decoder, u *slothPluginUse) bool {
		c := d.fields(u.config, u.path+".config", "labels", "metricName")
		labels := c.infoLabels("labels")
		if len(labels) == 0 && !c.bad {
			d.errorf(cmpNode(c.mapping, u.config), "%s.config.labels: at least one label is required (Sloth requires it)", u.path)
			return false
		}
		if mn, n := c.str("metricName"); n != nil && mn != "" && mn != "sloth_slo_info" {
			d.warnf(n, "%s.config.metricName: %q is ignored: the labels go on sloth_slo_info, as by default", u.path, mn)
		}
		u.apply = func(o *SLO) {
			if o.InfoLabels == nil {
				o.InfoLabels = map[string]string{}
			}
			maps.Copy(o.InfoLabels, labels)
		}
		return true
	},
}

// applySlothPlugins runs the applied plugins of the service's and the SLO's
// chains in Sloth's order: by priority, the service's first on a tie, and
// only the SLO's own when it sets overridePrevious.
func applySlothPlugins(o *SLO, service, own []slothPluginUse, override bool) {
	chain := slices.Clone(own)
	if !override {
		chain = append(slices.Clone(service), own...)
	}
	slices.SortStableFunc(chain, func(a, b slothPluginUse) int { return cmp.Compare(a.priority, b.priority) })
	for _, u := range chain {
		if u.apply != nil {
			u.apply(o)
		}
	}
}

// slothLabelRE finds Sloth's own labels in an annotation template:
// {{$labels.sloth_service}}, {{ $labels.sloth_slo }}.
var slothLabelRE = regexp.MustCompile(`\$labels\.(sloth_[a-z_]+)`)

// slothTemplateLabels warns about annotations that read Sloth's labels:
// slogate's alerts and its default rules carry slo and service instead, so
// the text would come out empty.
func (d *decoder) slothTemplateLabels(f *fields, name string) {
	n := f.node(name)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		v := d.resolve(n.Content[i+1])
		if v == nil || v.Kind != yaml.ScalarNode {
			continue
		}
		if m := slothLabelRE.FindStringSubmatch(v.Value); m != nil {
			d.warnf(v, "%s.%s.%s: reads Sloth's label %s, which only `slogate rules --style sloth` sets; slogate's alerts carry service and slo (sloth_id is slo, sloth_service is service)",
				f.path, name, n.Content[i].Value, m[1])
		}
	}
}

// slothAlertWindows decodes Sloth's AlertWindows: the page and ticket
// conditions (quick and slow) of SLOs of one period, each the share of the
// period's budget (errorBudgetPercent) that may burn within its long
// window. The factor is that share times period/long window, as Sloth
// computes it (2% of 30d in 1h: 14.4).
func (l *loader) slothAlertWindows(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "apiVersion", "kind", "metadata", "spec")
	top.sub("metadata", "name", "namespace", "labels", "annotations")
	top.require(root, "AlertWindows", "spec")
	spec := top.sub("spec", "sloPeriod", "page", "ticket")
	spec.require(spec.mapping, "spec", "sloPeriod", "page", "ticket")
	period, periodNode, ok := spec.duration("sloPeriod")
	if !ok {
		return
	}
	d.checkWindow(period, periodNode, "spec.sloPeriod")
	aw := &AlertWindows{Period: period, Pos: d.pos(root)}
	for _, sev := range []Severity{SeverityPage, SeverityTicket} {
		tier := spec.sub(string(sev), "quick", "slow")
		tier.require(tier.mapping, "", "quick", "slow")
		for _, speed := range []string{"quick", "slow"} {
			w := tier.sub(speed, "errorBudgetPercent", "shortWindow", "longWindow")
			if w.mapping == nil || w.bad {
				continue
			}
			w.require(w.mapping, "", "errorBudgetPercent", "shortWindow", "longWindow")
			pct, pctNode, okP := w.num("errorBudgetPercent")
			short, _, okS := w.duration("shortWindow")
			long, longNode, okL := w.duration("longWindow")
			if okP && (pct <= 0 || pct > 100) {
				d.errorf(pctNode, "%s.errorBudgetPercent: %s is not a percentage above 0 and at most 100", w.path, formatFloat(pct))
				okP = false
			}
			if okS && okL && short >= long {
				d.errorf(longNode, "%s: the long window (%s) must be longer than the short one (%s)", w.path, FormatDuration(long), FormatDuration(short))
				okL = false
			}
			if okL && long > period {
				d.errorf(longNode, "%s.longWindow: %s is longer than the period (%s)", w.path, FormatDuration(long), FormatDuration(period))
				okL = false
			}
			if !okP || !okS || !okL {
				continue
			}
			f := pct / 100 * period.Seconds() / long.Seconds()
			aw.Tiers = append(aw.Tiers, BurnTier{Severity: sev, Long: long, Short: short, Factor: math.Round(f*1e6) / 1e6, Budget: pct / 100})
		}
	}
	if len(aw.Tiers) == 4 {
		l.set.AlertWindows = append(l.set.AlertWindows, aw)
	}
}

// applyAlertWindows gives every SLO the AlertWindows of its period, and
// refuses two AlertWindows for one period.
func (l *loader) applyAlertWindows() {
	byPeriod := map[time.Duration]*AlertWindows{}
	for _, aw := range l.set.AlertWindows {
		if first, dup := byPeriod[aw.Period]; dup {
			l.diags = append(l.diags, Diagnostic{Pos: aw.Pos, Severity: LevelError,
				Message: fmt.Sprintf("AlertWindows for the period %s are already defined at %s", FormatDuration(aw.Period), first.Pos)})
			continue
		}
		byPeriod[aw.Period] = aw
	}
	for _, o := range l.set.SLOs {
		if aw, ok := byPeriod[o.Window]; ok && o.Alerting.Tiers == nil {
			o.Alerting.Tiers = slices.Clone(aw.Tiers)
		}
	}
}

// infoLabels reads the labels of the sloth_slo_info series. They go on that
// series only, so any name Prometheus 3 takes is accepted (Sloth's own
// example uses plug-l1), with a warning where older versions would refuse
// it.
func (f *fields) infoLabels(name string) map[string]string {
	labels := f.annotations(name)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !model.LegacyValidation.IsValidLabelName(k) {
			f.d.warnf(f.node(name), "%s: %q is a label name only Prometheus 3 (UTF-8 names) accepts", joinPath(f.path, name), k)
		}
	}
	return labels
}
