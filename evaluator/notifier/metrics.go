package notifier

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons of slogate_alerts_dropped_total.
const (
	// ReasonQueueFull: the queue of an Alertmanager was full, the oldest
	// alerts made room for newer ones.
	ReasonQueueFull = "queue_full"
	// ReasonRejected: Alertmanager answered 4xx (the payload is wrong and
	// sending it again would not help), or the alert was invalid and not
	// sent at all.
	ReasonRejected = "rejected"
)

// metrics are the notifier's, all by Alertmanager URL (credentials
// redacted).
type metrics struct {
	sent        *prometheus.CounterVec
	failed      *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	queueLength *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_alerts_sent_total",
			Help: "Alerts (firing, resend or resolved) that an Alertmanager accepted.",
		}, []string{"alertmanager"}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_alerts_failed_total",
			Help: "Alerts in delivery attempts that failed (network error, timeout, 5xx, 408, 429) and will be retried; an alert counts once per failed attempt.",
		}, []string{"alertmanager"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_alerts_dropped_total",
			Help: "Alerts given up: reason queue_full (oldest dropped from a full queue) or rejected (4xx answer or invalid alert).",
		}, []string{"alertmanager", "reason"}),
		queueLength: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slogate_alerts_queue_length",
			Help: "Alerts waiting to be delivered to an Alertmanager.",
		}, []string{"alertmanager"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slogate_alerts_latency_seconds",
			Help:    "Duration of POST requests to an Alertmanager's alerts API, failed ones included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"alertmanager"}),
	}
}

// targetMetrics are the series of one Alertmanager, created up front so
// that they read 0 rather than being absent before anything happened.
type targetMetrics struct {
	sent, failed, queueFull, rejected prometheus.Counter
	queueLength                       prometheus.Gauge
	latency                           prometheus.Observer
}

func (m *metrics) target(name string) *targetMetrics {
	return &targetMetrics{
		sent:        m.sent.WithLabelValues(name),
		failed:      m.failed.WithLabelValues(name),
		queueFull:   m.dropped.WithLabelValues(name, ReasonQueueFull),
		rejected:    m.dropped.WithLabelValues(name, ReasonRejected),
		queueLength: m.queueLength.WithLabelValues(name),
		latency:     m.latency.WithLabelValues(name),
	}
}
