package chaos

import "github.com/prometheus/client_golang/prometheus"

// gateCollector exports slogate_gate_open and slogate_run_active per
// experiment, computed at scrape time so they never lag the API, all from
// one snapshot.
type gateCollector struct{ m *Manager }

var (
	descGateOpen = prometheus.NewDesc("slogate_gate_open",
		"1 when the experiment's gate is open, 0 when closed or unknown.", []string{"experiment"}, nil)
	descRunActive = prometheus.NewDesc("slogate_run_active",
		"1 while a run of the experiment is running or recovering.", []string{"experiment"}, nil)
)

func (c *gateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGateOpen
	ch <- descRunActive
}

func (c *gateCollector) Collect(ch chan<- prometheus.Metric) {
	answers, active := c.m.gates(c.m.opts.Snapshots())
	for _, ans := range answers {
		open, running := 0.0, 0.0
		if ans.Open() {
			open = 1
		}
		if active[ans.Experiment] {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(descGateOpen, prometheus.GaugeValue, open, ans.Experiment)
		ch <- prometheus.MustNewConstMetric(descRunActive, prometheus.GaugeValue, running, ans.Experiment)
	}
}
