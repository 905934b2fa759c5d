package slo

import (
	"fmt"
	"maps"

	"go.yaml.in/yaml/v3"
)

// sloth decodes a Sloth spec (version: prometheus/v1). Sloth groups the SLOs
// of one service, and its SLO names are only unique within that service,
// so each SLO is named "<service>-<slo name>" (Sloth's own sloth_id is the
// same pair). The window is Sloth's default, 30 days; the queries keep their
// {{.window}} templates; service labels and SLO labels are merged (the
// SLO's win), as Sloth does; alerting is on and named as Sloth names it,
// page_alert/ticket_alert map to the page/ticket tiers, disable: true
// turning one off. Sloth's SLI plugins cannot be evaluated here and are
// errors.
func (l *loader) sloth(d *decoder, root *yaml.Node) {
	top := d.fields(root, "", "version", "service", "labels", "slos")
	service, serviceNode := top.str("service")
	top.require(root, "Sloth spec", "service", "slos")
	if serviceNode != nil && service == "" {
		d.errorf(serviceNode, "service: must not be empty")
	}
	labels := top.labels("labels", reservedSLOLabels...)
	items := top.list("slos")
	if top.has("slos") && len(items) == 0 && top.node("slos").Kind == yaml.SequenceNode {
		d.errorf(top.node("slos"), "slos: at least one SLO is required")
	}
	for i, item := range items {
		path := fmt.Sprintf("slos[%d]", i)
		if item == nil {
			d.errorf(top.node("slos"), "%s: expected an SLO, got null", path)
			continue
		}
		l.slothSLO(d, item, path, service, labels)
	}
}

func (l *loader) slothSLO(d *decoder, item *yaml.Node, path, service string, serviceLabels map[string]string) {
	f := d.fields(item, path, "name", "description", "objective", "labels", "sli", "alerting")
	if f.bad {
		return
	}
	f.require(item, "", "name", "objective", "sli")
	o := &SLO{Service: service, Window: DefaultWindow, Pos: d.pos(item), Gate: GatePolicy{BurnRateWindow: DefaultBurnRateWindow}}
	name, nameNode := f.str("name")
	if nameNode != nil {
		o.Name = service + "-" + name
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
		d.errorf(sli.node("plugin"), "%s.sli.plugin: Sloth SLI plugins are not supported: write the queries as sli.events or sli.raw", path)
	case sli.has("events") && sli.has("raw"):
		d.errorf(sli.mapping, "%s.sli: set only one of events and raw", path)
	case !sli.has("events") && !sli.has("raw") && sli.mapping != nil && !sli.bad:
		d.errorf(sli.mapping, "%s.sli: set events or raw", path)
	}
	if sli.has("events") {
		ev := sli.sub("events", "error_query", "total_query")
		ev.require(ev.mapping, "", "error_query", "total_query")
		o.Indicator.Ratio = &RatioIndicator{}
		o.Indicator.Ratio.Errors, _ = d.query(ev.node("error_query"), ev.path+".error_query", true)
		o.Indicator.Ratio.Total, _ = d.query(ev.node("total_query"), ev.path+".total_query", true)
	} else if sli.has("raw") {
		raw := sli.sub("raw", "error_ratio_query")
		raw.require(raw.mapping, "", "error_ratio_query")
		o.Indicator.Raw = &RawIndicator{}
		o.Indicator.Raw.ErrorRatio, _ = d.query(raw.node("error_ratio_query"), raw.path+".error_ratio_query", true)
	}

	af := f.sub("alerting", "name", "labels", "annotations", "page_alert", "ticket_alert")
	o.Alerting = Alerting{Enabled: true, Name: DefaultAlertName}
	if an, n := af.str("name"); n != nil {
		o.Alerting.Name = an
		if msg := checkAlertName(an); msg != "" {
			d.errorf(n, "%s.name: %s", af.path, msg)
		}
	}
	o.Alerting.Labels = af.labels("labels", reservedAlertLabels...)
	o.Alerting.Annotations = af.annotations("annotations")
	o.Alerting.Page = slothTier(af.sub("page_alert", "disable", "labels", "annotations"))
	o.Alerting.Ticket = slothTier(af.sub("ticket_alert", "disable", "labels", "annotations"))

	l.set.SLOs = append(l.set.SLOs, o)
	l.define(d, KindSLO, o.Name, nameNode, o)
}

func slothTier(f *fields) AlertTier {
	return AlertTier{
		Enabled:     !f.boolean("disable", false),
		Labels:      f.labels("labels", reservedAlertLabels...),
		Annotations: f.annotations("annotations"),
	}
}
