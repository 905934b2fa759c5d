package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestOMWriterText(t *testing.T) {
	om := NewOMWriter(t)
	t0 := time.Unix(1700000000, 0)
	om.Family("http_requests_total", OMCounter)
	om.Sample(map[string]string{"job": "a", "code": "200"}, t0, 1)
	om.Sample(map[string]string{"job": "a", "code": "200"}, t0.Add(1500*time.Millisecond), 2.5)
	om.Sample(map[string]string{"path": "x\"y\\z\nw"}, t0, 7)
	om.Family("temperature", OMGauge)
	om.Sample(nil, t0, -1e-3)
	om.Family("rtt_seconds", OMHistogram)
	om.HistogramSample(map[string]string{"job": "a"}, t0, HistogramPoint{
		Buckets: map[float64]float64{1: 2, 0.25: 1},
		Count:   3, Sum: 2.75,
	})
	b, err := os.ReadFile(om.Close())
	if err != nil {
		t.Fatal(err)
	}
	const want = `# TYPE http_requests counter
http_requests_total{code="200",job="a"} 1.0 1700000000
http_requests_total{code="200",job="a"} 2.5 1700000001.500
http_requests_total{path="x\"y\\z\nw"} 7.0 1700000000
# TYPE temperature gauge
temperature -0.001 1700000000
# TYPE rtt_seconds histogram
rtt_seconds_bucket{job="a",le="0.25"} 1.0 1700000000
rtt_seconds_bucket{job="a",le="1.0"} 2.0 1700000000
rtt_seconds_bucket{job="a",le="+Inf"} 3.0 1700000000
rtt_seconds_count{job="a"} 3.0 1700000000
rtt_seconds_sum{job="a"} 2.75 1700000000
# EOF
`
	if string(b) != want {
		t.Errorf("text:\n%s\nwant:\n%s", b, want)
	}
	if om.Close() != om.Path() {
		t.Error("second Close returned another path")
	}
}

func TestFindBinaryMissingSaysMakeTools(t *testing.T) {
	t.Setenv(BinDirEnv, t.TempDir())
	_, err := findBinary("no-such-tool-for-testenv")
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("findBinary error = %v, want one telling to run make tools", err)
	}
}

func TestPromConfig(t *testing.T) {
	got, err := promConfigYAML(PromOptions{
		ScrapeInterval:     1500 * time.Millisecond,
		EvaluationInterval: time.Minute,
		Targets: []ScrapeTarget{
			{Job: "a", Addr: "127.0.0.1:1"},
			{Job: "b", Addr: "127.0.0.1:2", Labels: map[string]string{"zone": "z"}},
			{Job: "a", Addr: "127.0.0.1:3"},
		},
		RuleFiles:     []string{"/r/*.yml"},
		Alertmanagers: []string{"127.0.0.1:9093"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = `global:
    scrape_interval: 1s500ms
    scrape_timeout: 1s500ms
    evaluation_interval: 1m
rule_files:
    - /r/*.yml
alerting:
    alertmanagers:
        - static_configs:
            - targets:
                - 127.0.0.1:9093
scrape_configs:
    - job_name: a
      metrics_path: /metrics
      static_configs:
        - targets:
            - 127.0.0.1:1
        - targets:
            - 127.0.0.1:3
    - job_name: b
      metrics_path: /metrics
      static_configs:
        - targets:
            - 127.0.0.1:2
          labels:
            zone: z
`
	if string(got) != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
}
