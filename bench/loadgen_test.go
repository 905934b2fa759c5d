package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Environment variables of BenchmarkGateAPI.
const (
	// GateSLOsEnv: SLOs slogate evaluates meanwhile (default 1000).
	GateSLOsEnv = "SLOGATE_BENCH_GATE_SLOS"
	// GateRateEnv: requests per second of the fixed-rate run (default 1000).
	GateRateEnv = "SLOGATE_BENCH_GATE_RATE"
	// GateSecondsEnv: length of each run in seconds (default 10).
	GateSecondsEnv = "SLOGATE_BENCH_GATE_SECONDS"
	// GateClientsEnv: concurrent clients of the max-throughput runs,
	// comma-separated (default 1,16).
	GateClientsEnv = "SLOGATE_BENCH_GATE_CLIENTS"
)

// gateInterval is slogate's evaluation interval during the load: 10 s, so
// that every run overlaps at least one evaluation cycle.
const gateInterval = 10 * time.Second

// loadReport is what bench/loadgen prints.
type loadReport struct {
	Requests int         `json:"requests"`
	Failed   int         `json:"failed"`
	Codes    map[int]int `json:"codes"`
	Seconds  float64     `json:"seconds"`
	PerSec   float64     `json:"perSec"`
	P50      float64     `json:"p50"`
	P90      float64     `json:"p90"`
	P99      float64     `json:"p99"`
	P999     float64     `json:"p999"`
	Max      float64     `json:"max"`
	Late     int         `json:"late"`
	Error    string      `json:"error"`

	name       string
	slogateCPU float64 // slogate's CPU cores during the run
}

// loadgenBinary builds bench/loadgen once per process.
func loadgenBinary(tb testing.TB) string {
	tb.Helper()
	return testenv.GoBinary(tb, "./bench/loadgen")
}

// gateDefinitions: the grouped SLOs of BenchmarkServiceCycle, and the
// experiment the load asks about, gated by a hypothesis and two SLOs.
func gateDefinitions(n int) string {
	return serviceDefinitions(variantGrouped, n) + `---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: svc-0-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{service="svc-0",code=~"5.."}[1m])) / sum(rate(http_requests_total{service="svc-0"}[1m]))
      tolerance: "< 0.05"
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: svc-0-chaos}
spec:
  hypotheses: [svc-0-steady]
  slos: [svc-0-availability, svc-1-availability]
`
}

// BenchmarkGateAPI loads GET /api/v1/experiments/{name}/gate of a real
// slogate (evaluating SLOGATE_BENCH_GATE_SLOS SLOs, default 1000, every
// 10 s over live data) from a second process on loopback (bench/loadgen):
// a fixed-rate run (SLOGATE_BENCH_GATE_RATE requests/s, default 1000, for
// SLOGATE_BENCH_GATE_SECONDS, default 10, latency counted from when each
// request was due) and closed-loop runs with SLOGATE_BENCH_GATE_CLIENTS
// concurrent clients (default 1,16) for the same time. Both processes share
// the machine's cores.
func BenchmarkGateAPI(b *testing.B) {
	n := envInt(b, GateSLOsEnv, 1000)
	rate := envInt(b, GateRateEnv, 1000)
	seconds := envInt(b, GateSecondsEnv, 10)
	clients := envList(b, GateClientsEnv, []int{1, 16})
	loadgen := loadgenBinary(b)

	target := testenv.NewTarget(b)
	tr := newTraffic(target, 4)
	for i := range max(n, 2) {
		tr.add("http_requests_total", serviceName(i), serviceRPS(i), 0.0005)
	}
	prom := testenv.StartPrometheus(b, testenv.PromOptions{
		ScrapeInterval: serviceScrape,
		Targets:        []testenv.ScrapeTarget{target.ScrapeTarget(serviceJob)},
	})
	prom.WaitForQuery(b, `count_over_time(up{job="`+serviceJob+`"}[5m])`, func(v float64) bool { return v >= 2 }, 2*time.Minute)
	p := startSlogate(b, slogateOptions{promURL: prom.URL(), definitions: gateDefinitions(max(n, 2)), interval: gateInterval})
	gateURL := p.url + "/api/v1/experiments/svc-0-chaos/gate"
	p.waitFor("the gate to open", 5*time.Minute, time.Second, gateOpen(context.Background(), gateURL))

	type run struct {
		name string
		args []string
	}
	runs := []run{{fmt.Sprintf("rate=%d", rate), []string{"-rate", strconv.Itoa(rate), "-concurrency", "64"}}}
	for _, c := range clients {
		runs = append(runs, run{fmt.Sprintf("clients=%d", c), []string{"-rate", "0", "-concurrency", strconv.Itoa(c)}})
	}
	var results []loadReport
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			var rep loadReport
			for range b.N {
				rep = runLoadgen(b, p, loadgen, append(r.args, "-url", gateURL, "-duration", fmt.Sprintf("%ds", seconds)))
			}
			rep.name = r.name
			if rep.Failed > 0 {
				b.Errorf("%d requests without an answer, first: %s", rep.Failed, rep.Error)
			}
			b.ReportMetric(rep.PerSec, "req/s")
			b.ReportMetric(rep.P50, "ms-p50")
			b.ReportMetric(rep.P99, "ms-p99")
			b.ReportMetric(rep.Max, "ms-max")
			b.ReportMetric(rep.slogateCPU, "slogate-cpu-cores")
			results = append(results, rep)
			b.Log("\n" + loadTable(n, results))
		})
	}
}

func runLoadgen(b *testing.B, p *slogateProc, loadgen string, args []string) loadReport {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, loadgen, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	s0 := readProcStat(b, p.pid())
	t0 := time.Now()
	b.StartTimer()
	err := cmd.Run()
	b.StopTimer()
	s1 := readProcStat(b, p.pid())
	if err != nil {
		b.Fatalf("loadgen %v: %v\n%s", args, err, stderr.String())
	}
	var rep loadReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		b.Fatalf("loadgen report %q: %v", stdout.String(), err)
	}
	rep.slogateCPU = (s1.cpu - s0.cpu) / time.Since(t0).Seconds()
	return rep
}

func loadTable(n int, rs []loadReport) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "gate API, %d SLOs\trequests\treq/s\tp50\tp90\tp99\tp99.9\tmax\tsent late\tslogate CPU\tstatus codes\t\n", n)
	for _, r := range rs {
		var codes []string
		for c, k := range r.Codes {
			codes = append(codes, fmt.Sprintf("%d×%d", c, k))
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t%d\t%.2f cores\t%s\t\n",
			r.name, r.Requests, r.PerSec, r.P50, r.P90, r.P99, r.P999, r.Max, r.Late, r.slogateCPU, strings.Join(codes, " "))
	}
	_ = w.Flush()
	return sb.String()
}
