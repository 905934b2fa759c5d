package evaluator

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/slogate/slogate/slo"
)

// selfMetrics are the evaluator's metrics about itself.
type selfMetrics struct {
	queryDuration *prometheus.HistogramVec
	queryFailures *prometheus.CounterVec
	evalDuration  prometheus.Histogram
	missed        prometheus.Counter
	lastSuccess   prometheus.Gauge
	// backfillPending is what the log's backfill progress says, as a metric.
	backfillPending prometheus.Gauge
	batched         prometheus.Counter
}

func newSelfMetrics(reg prometheus.Registerer) *selfMetrics {
	f := promauto.With(reg)
	m := &selfMetrics{
		queryDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slogate_query_duration_seconds",
			Help:    "Duration of queries to Prometheus, by type (instant or range).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
		queryFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_query_failures_total",
			Help: "Queries to Prometheus that failed, by reason (timeout, unreachable, bad_query, server_error, bad_result, other).",
		}, []string{"reason"}),
		evalDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "slogate_evaluation_duration_seconds",
			Help:    "Duration of an evaluation cycle of all definitions.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		missed: f.NewCounter(prometheus.CounterOpts{
			Name: "slogate_evaluation_iterations_missed_total",
			Help: "Evaluation cycles skipped because the previous one overran the interval.",
		}),
		batched: f.NewCounter(prometheus.CounterOpts{
			Name: "slogate_queries_batched_total",
			Help: "Queries not sent because they were answered by a grouped query of SLOs that differ only in label values.",
		}),
		backfillPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_slo_backfill_pending",
			Help: "SLOs whose windows are not completely fetched from Prometheus yet (backfill at start and after a reload).",
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_last_successful_evaluation_timestamp_seconds",
			Help: "Evaluation time of the latest cycle in which every query succeeded.",
		}),
	}
	// The ring slots live outside the Go heap (slotmem.go): Go's own
	// memory metrics do not see them.
	for _, state := range []string{"mapped", "in_use"} {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "slogate_slice_buffer_bytes",
			Help:        "Memory of the SLOs' slice buffers, outside the Go heap: mapped from the system (a high-water mark) and in use by the SLOs now.",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			mapped, inUse := SlotMemory()
			if state == "mapped" {
				return float64(mapped)
			}
			return float64(inUse)
		})
	}
	for _, r := range []string{ReasonTimeout, ReasonUnreachable, ReasonBadQuery, ReasonServer, ReasonBadResult, ReasonOther} {
		m.queryFailures.WithLabelValues(r)
	}
	m.queryDuration.WithLabelValues("instant")
	m.queryDuration.WithLabelValues("range")
	return m
}

var (
	descSLOInfo = prometheus.NewDesc("slogate_slo_info",
		"Information about an SLO; its user labels are copied here.", []string{"slo", "service"}, nil)
	descObjective = sloDesc("slogate_slo_objective_ratio",
		"The SLO's objective as a ratio (0.999 for 99.9 %).", []string{"slo", "service"}, nil)
	descSLI = sloDesc("slogate_slo_sli_ratio",
		"Good events / total events over the window; absent with no traffic or incomplete data.", []string{"slo", "service", "window"}, nil)
	descBurn = sloDesc("slogate_slo_burn_rate",
		"Error ratio / error budget over the window; absent while the window is incomplete.", []string{"slo", "service", "window"}, nil)
	descBudget = sloDesc("slogate_slo_error_budget_remaining_ratio",
		"Error budget remaining over the SLO window (1 = untouched, negative = overspent).", []string{"slo", "service"}, nil)
	descPeriodStart = sloDesc("slogate_slo_period_start_timestamp_seconds",
		"Start of the calendar period whose error budget a calendar SLO spends (calendar SLOs only).", []string{"slo", "service"}, nil)
	descPeriodEnd = sloDesc("slogate_slo_period_end_timestamp_seconds",
		"End of the calendar period of a calendar SLO, when its error budget starts afresh.", []string{"slo", "service"}, nil)
	descPeriodLeft = sloDesc("slogate_slo_period_remaining_seconds",
		"Time left in the calendar period of a calendar SLO at its last evaluation.", []string{"slo", "service"}, nil)
	descExhaustion = sloDesc("slogate_slo_error_budget_exhaustion_seconds",
		"Time until the error budget is spent if the burn rate of the forecast window (evaluation.forecast-window) goes on; 0 when spent already; absent when it lasts to the end of the calendar period or a rolling window ahead.", []string{"slo", "service"}, nil)
	descForecast = sloDesc("slogate_slo_error_budget_forecast_ratio",
		"Error budget remaining at the end of the calendar period, or a rolling window ahead, if the burn rate of the forecast window goes on.", []string{"slo", "service"}, nil)
	descCoverage = sloDesc("slogate_slo_window_coverage_ratio",
		"Share of the SLO window with history to measure: below 1 while the window reaches back beyond what the backend keeps and slogate has not run for a whole window.", []string{"slo", "service"}, nil)
	descAlert = sloDesc("slogate_slo_alert_firing",
		"1 while the multi-window multi-burn-rate alert of the severity fires.", []string{"slo", "service", "severity"}, nil)
	descAlertLowTraffic = sloDesc("slogate_slo_alert_low_traffic",
		"1 while a tier of the severity counts fewer events than its minEvents: it can neither fire nor resolve, and the alert keeps its state.", []string{"slo", "service", "severity"}, nil)
	descFresh = sloDesc("slogate_slo_data_fresh",
		"1 when the SLO's newest slice was measured within the last two intervals.", []string{"slo", "service"}, nil)
	descGroups = prometheus.NewDesc("slogate_slo_groups",
		"Groups of a grouped SLO (spec.groupBy) followed, each with its own series labelled with its values and group.", []string{"slo", "service"}, nil)
	descGroupsLimited = prometheus.NewDesc("slogate_slo_groups_limited",
		"Groups of a grouped SLO found in the data but not followed because of maxGroups: counted only in the aggregate.", []string{"slo", "service"}, nil)
	descVerdict = prometheus.NewDesc("slogate_hypothesis_verdict",
		"The hypothesis verdict as a state set: 1 for the current verdict, 0 for the others.", []string{"hypothesis", "verdict"}, nil)
	descProbeValue = prometheus.NewDesc("slogate_probe_value",
		"The value a probe measured; absent without a value.", []string{"hypothesis", "probe"}, nil)
	descProbeWithin = prometheus.NewDesc("slogate_probe_within_tolerance",
		"1 when the probe's value is within tolerance, 0 when not; absent without a value.", []string{"hypothesis", "probe"}, nil)
	descProbeBaseline = prometheus.NewDesc("slogate_probe_baseline",
		"What a relative tolerance compares the probe's value with: its baseline, the control group's value, or the control samples' median; absent for fixed tolerances and without a value.", []string{"hypothesis", "probe"}, nil)
	descProbeEvents = prometheus.NewDesc("slogate_probe_events",
		"Events the probe's low-traffic guard (minEvents) counted; absent without a guard or a count.", []string{"hypothesis", "probe"}, nil)
)

// sloFamily is how a per-SLO metric was declared, to declare it again with
// the labels of a group.
type sloFamily struct {
	name, help string
	labels     []string
}

var sloFamilies = map[*prometheus.Desc]sloFamily{}

// sloDesc declares a per-SLO metric whose series of a group's SLO also
// carry the group's labels (groupDesc).
func sloDesc(name, help string, labels []string, _ prometheus.Labels) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, labels, nil)
	sloFamilies[d] = sloFamily{name: name, help: help, labels: labels}
	return d
}

// collector exports the latest statuses. Reading them at scrape time means
// the series of a deleted definition disappear with it.
type collector struct{ e *Evaluator }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSLOInfo, descObjective, descSLI, descBurn, descBudget, descPeriodStart, descPeriodEnd, descPeriodLeft, descExhaustion, descForecast, descCoverage, descAlert, descAlertLowTraffic, descFresh, descGroups, descGroupsLimited, descVerdict, descProbeValue, descProbeWithin, descProbeBaseline, descProbeEvents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.e.Snapshot()
	derived := map[string]*prometheus.Desc{}
	for _, s := range snap.SLOs() {
		def := snap.SLODef(s.Name)
		name := s.Name
		// The series of a group's SLO are the grouped SLO's, with the
		// group's labels and a group label naming it.
		var groupNames, groupValues []string
		if def != nil && def.Parent != "" {
			name = def.Parent
			groupNames, groupValues = []string{"group"}, []string{slo.GroupLabel(def.GroupBy, def.Group)}
			for _, l := range def.GroupBy {
				groupNames = append(groupNames, l)
				groupValues = append(groupValues, def.Group[l])
			}
		}
		emit := func(d *prometheus.Desc, v float64, rest ...string) {
			values := append(append([]string{name, s.Service}, rest...), groupValues...)
			if groupNames != nil {
				key := fmt.Sprintf("%p\x00%s", d, strings.Join(groupNames, "\x00"))
				gd := derived[key]
				if gd == nil {
					f := sloFamilies[d]
					gd = prometheus.NewDesc(f.name, f.help, append(slices.Clone(f.labels), groupNames...), nil)
					derived[key] = gd
				}
				d = gd
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, values...)
		}
		names := []string{"slo", "service"}
		values := []string{name, s.Service}
		if def != nil {
			labels := maps.Clone(def.Labels)
			if def.Parent != "" {
				labels["group"] = groupValues[0]
			}
			for _, k := range slices.Sorted(maps.Keys(labels)) {
				if k != "slo" && k != "service" {
					names = append(names, k)
					values = append(values, labels[k])
				}
			}
		}
		info := prometheus.NewDesc("slogate_slo_info", "Information about an SLO; its user labels are copied here.", names, nil)
		ch <- prometheus.MustNewConstMetric(info, prometheus.GaugeValue, 1, values...)
		emit(descObjective, s.Objective/100)
		fresh := 0.0
		if s.Fresh {
			fresh = 1
		}
		emit(descFresh, fresh)
		for _, w := range s.Windows {
			if w.SLI.Valid() {
				emit(descSLI, float64(w.SLI), w.Window)
			}
			if w.BurnRate.Valid() {
				emit(descBurn, float64(w.BurnRate), w.Window)
			}
		}
		if s.BudgetRemaining.Valid() {
			emit(descBudget, float64(s.BudgetRemaining))
		}
		if n := len(s.Windows); n > 0 && s.Windows[n-1].Coverage.Valid() {
			emit(descCoverage, float64(s.Windows[n-1].Coverage))
		}
		if p := s.Period; p != nil {
			emit(descPeriodStart, float64(p.Start.Unix()))
			emit(descPeriodEnd, float64(p.End.Unix()))
			emit(descPeriodLeft, p.TimeLeft)
		}
		if f := s.Forecast; f != nil {
			if f.ExhaustedIn.Valid() {
				emit(descExhaustion, float64(f.ExhaustedIn))
			}
			if f.BudgetAtEnd.Valid() {
				emit(descForecast, float64(f.BudgetAtEnd))
			}
		}
		for _, a := range s.Alerts {
			v := 0.0
			if a.Firing {
				v = 1
			}
			emit(descAlert, v, string(a.Severity))
			low := 0.0
			if a.LowTraffic {
				low = 1
			}
			emit(descAlertLowTraffic, low, string(a.Severity))
		}
		if g := s.Groups; g != nil {
			ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(g.Tracked), s.Name, s.Service)
			ch <- prometheus.MustNewConstMetric(descGroupsLimited, prometheus.GaugeValue, float64(g.Limited), s.Name, s.Service)
		}
	}
	for _, h := range snap.Hypotheses() {
		for _, v := range slo.Verdicts {
			val := 0.0
			if h.Verdict == v {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(descVerdict, prometheus.GaugeValue, val, h.Name, string(v))
		}
		for _, p := range h.Probes {
			if p.Value.Valid() {
				ch <- prometheus.MustNewConstMetric(descProbeValue, prometheus.GaugeValue, float64(p.Value), h.Name, p.Name)
			}
			if p.Within != nil {
				v := 0.0
				if *p.Within {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descProbeWithin, prometheus.GaugeValue, v, h.Name, p.Name)
			}
			if b := p.Baseline; b != nil && b.Value.Valid() {
				ch <- prometheus.MustNewConstMetric(descProbeBaseline, prometheus.GaugeValue, float64(b.Value), h.Name, p.Name)
			}
			if e := p.Events; e != nil && e.Valid() {
				ch <- prometheus.MustNewConstMetric(descProbeEvents, prometheus.GaugeValue, float64(*e), h.Name, p.Name)
			}
		}
	}
}
