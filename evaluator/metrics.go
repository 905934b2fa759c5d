package evaluator

import (
	"sort"

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
	descObjective = prometheus.NewDesc("slogate_slo_objective_ratio",
		"The SLO's objective as a ratio (0.999 for 99.9 %).", []string{"slo", "service"}, nil)
	descSLI = prometheus.NewDesc("slogate_slo_sli_ratio",
		"Good events / total events over the window; absent with no traffic or incomplete data.", []string{"slo", "service", "window"}, nil)
	descBurn = prometheus.NewDesc("slogate_slo_burn_rate",
		"Error ratio / error budget over the window; absent while the window is incomplete.", []string{"slo", "service", "window"}, nil)
	descBudget = prometheus.NewDesc("slogate_slo_error_budget_remaining_ratio",
		"Error budget remaining over the SLO window (1 = untouched, negative = overspent).", []string{"slo", "service"}, nil)
	descPeriodStart = prometheus.NewDesc("slogate_slo_period_start_timestamp_seconds",
		"Start of the calendar period whose error budget a calendar SLO spends (calendar SLOs only).", []string{"slo", "service"}, nil)
	descPeriodEnd = prometheus.NewDesc("slogate_slo_period_end_timestamp_seconds",
		"End of the calendar period of a calendar SLO, when its error budget starts afresh.", []string{"slo", "service"}, nil)
	descPeriodLeft = prometheus.NewDesc("slogate_slo_period_remaining_seconds",
		"Time left in the calendar period of a calendar SLO at its last evaluation.", []string{"slo", "service"}, nil)
	descExhaustion = prometheus.NewDesc("slogate_slo_error_budget_exhaustion_seconds",
		"Time until the error budget is spent if the burn rate of the forecast window (evaluation.forecast-window) goes on; 0 when spent already; absent when it lasts to the end of the calendar period or a rolling window ahead.", []string{"slo", "service"}, nil)
	descForecast = prometheus.NewDesc("slogate_slo_error_budget_forecast_ratio",
		"Error budget remaining at the end of the calendar period, or a rolling window ahead, if the burn rate of the forecast window goes on.", []string{"slo", "service"}, nil)
	descCoverage = prometheus.NewDesc("slogate_slo_window_coverage_ratio",
		"Share of the SLO window with history to measure: below 1 while the window reaches back beyond what the backend keeps and slogate has not run for a whole window.", []string{"slo", "service"}, nil)
	descAlert = prometheus.NewDesc("slogate_slo_alert_firing",
		"1 while the multi-window multi-burn-rate alert of the severity fires.", []string{"slo", "service", "severity"}, nil)
	descFresh = prometheus.NewDesc("slogate_slo_data_fresh",
		"1 when the SLO's newest slice was measured within the last two intervals.", []string{"slo", "service"}, nil)
	descVerdict = prometheus.NewDesc("slogate_hypothesis_verdict",
		"The hypothesis verdict as a state set: 1 for the current verdict, 0 for the others.", []string{"hypothesis", "verdict"}, nil)
	descProbeValue = prometheus.NewDesc("slogate_probe_value",
		"The value a probe measured; absent without a value.", []string{"hypothesis", "probe"}, nil)
	descProbeWithin = prometheus.NewDesc("slogate_probe_within_tolerance",
		"1 when the probe's value is within tolerance, 0 when not; absent without a value.", []string{"hypothesis", "probe"}, nil)
)

// collector exports the latest statuses. Reading them at scrape time means
// the series of a deleted definition disappear with it.
type collector struct{ e *Evaluator }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSLOInfo, descObjective, descSLI, descBurn, descBudget, descPeriodStart, descPeriodEnd, descPeriodLeft, descExhaustion, descForecast, descCoverage, descAlert, descFresh, descVerdict, descProbeValue, descProbeWithin} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.e.Snapshot()
	defs := snap.Definitions()
	for _, s := range snap.SLOs() {
		def := defs.SLO(s.Name)
		names := []string{"slo", "service"}
		values := []string{s.Name, s.Service}
		if def != nil {
			keys := make([]string, 0, len(def.Labels))
			for k := range def.Labels {
				if k != "slo" && k != "service" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				names = append(names, k)
				values = append(values, def.Labels[k])
			}
		}
		info := prometheus.NewDesc("slogate_slo_info", "Information about an SLO; its user labels are copied here.", names, nil)
		ch <- prometheus.MustNewConstMetric(info, prometheus.GaugeValue, 1, values...)
		ch <- prometheus.MustNewConstMetric(descObjective, prometheus.GaugeValue, s.Objective/100, s.Name, s.Service)
		fresh := 0.0
		if s.Fresh {
			fresh = 1
		}
		ch <- prometheus.MustNewConstMetric(descFresh, prometheus.GaugeValue, fresh, s.Name, s.Service)
		for _, w := range s.Windows {
			if w.SLI.Valid() {
				ch <- prometheus.MustNewConstMetric(descSLI, prometheus.GaugeValue, float64(w.SLI), s.Name, s.Service, w.Window)
			}
			if w.BurnRate.Valid() {
				ch <- prometheus.MustNewConstMetric(descBurn, prometheus.GaugeValue, float64(w.BurnRate), s.Name, s.Service, w.Window)
			}
		}
		if s.BudgetRemaining.Valid() {
			ch <- prometheus.MustNewConstMetric(descBudget, prometheus.GaugeValue, float64(s.BudgetRemaining), s.Name, s.Service)
		}
		if n := len(s.Windows); n > 0 && s.Windows[n-1].Coverage.Valid() {
			ch <- prometheus.MustNewConstMetric(descCoverage, prometheus.GaugeValue, float64(s.Windows[n-1].Coverage), s.Name, s.Service)
		}
		if p := s.Period; p != nil {
			ch <- prometheus.MustNewConstMetric(descPeriodStart, prometheus.GaugeValue, float64(p.Start.Unix()), s.Name, s.Service)
			ch <- prometheus.MustNewConstMetric(descPeriodEnd, prometheus.GaugeValue, float64(p.End.Unix()), s.Name, s.Service)
			ch <- prometheus.MustNewConstMetric(descPeriodLeft, prometheus.GaugeValue, p.TimeLeft, s.Name, s.Service)
		}
		if f := s.Forecast; f != nil {
			if f.ExhaustedIn.Valid() {
				ch <- prometheus.MustNewConstMetric(descExhaustion, prometheus.GaugeValue, float64(f.ExhaustedIn), s.Name, s.Service)
			}
			if f.BudgetAtEnd.Valid() {
				ch <- prometheus.MustNewConstMetric(descForecast, prometheus.GaugeValue, float64(f.BudgetAtEnd), s.Name, s.Service)
			}
		}
		for _, a := range s.Alerts {
			v := 0.0
			if a.Firing {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descAlert, prometheus.GaugeValue, v, s.Name, s.Service, string(a.Severity))
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
		}
	}
}
