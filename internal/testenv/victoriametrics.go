package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// VictoriaMetrics is a running single-node VictoriaMetrics, the
// Prometheus-compatible backend of the compatibility tests (Debian's
// victoria-metrics package).
type VictoriaMetrics struct {
	proc *process
}

// StartVictoriaMetrics starts victoria-metrics from PATH on a free loopback
// port, scraping targets every scrapeInterval, and waits for /health. A
// missing binary fails the test with the package to install.
func StartVictoriaMetrics(t testing.TB, scrapeInterval time.Duration, targets ...ScrapeTarget) *VictoriaMetrics {
	t.Helper()
	bin, err := exec.LookPath("victoria-metrics")
	if err != nil {
		t.Fatalf("testenv: victoria-metrics not found in PATH: install Debian's package (apt-get install victoria-metrics); .ci/run does")
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: " + scrapeInterval.String() + "\nscrape_configs:\n")
	for _, tg := range targets {
		cfg.WriteString("  - job_name: " + tg.Job + "\n    static_configs:\n      - targets: ['" + tg.Addr + "']\n")
	}
	cfgPath := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatalf("testenv: victoria-metrics config: %v", err)
	}
	proc := launch(t, func(port int) (*process, error) {
		addr := loopbackAddr(port)
		return &process{
			name: "victoria-metrics",
			bin:  bin,
			args: []string{
				"-httpListenAddr=" + addr,
				"-storageDataPath=" + filepath.Join(dir, "data"),
				"-retentionPeriod=60d",
				"-promscrape.config=" + cfgPath,
				// By default VictoriaMetrics hides the newest 30s of data
				// from queries; slogate wants what a Prometheus would show.
				"-search.latencyOffset=0s",
				"-search.disableCache",
			},
			logPath:   filepath.Join(dir, "victoria-metrics.log"),
			addr:      addr,
			readyPath: "/health",
		}, nil
	})
	return &VictoriaMetrics{proc: proc}
}

// URL is the base URL of its Prometheus-compatible query API.
func (v *VictoriaMetrics) URL() string { return "http://" + v.proc.addr }
