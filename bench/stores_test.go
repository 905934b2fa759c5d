package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Environment of BenchmarkStores.
const (
	// StoresRateEnv is the gate requests per second of the fixed-rate run.
	StoresRateEnv = "SLOGATE_BENCH_STORES_RATE"
	// StoresSecondsEnv is how long the fixed-rate run lasts.
	StoresSecondsEnv = "SLOGATE_BENCH_STORES_SECONDS"
	// StoresRunsEnv is how many runs are started (and aborted) per store.
	StoresRunsEnv = "SLOGATE_BENCH_STORES_RUNS"
)

// storesSLOs is the SLOs the slogate of BenchmarkStores evaluates: few,
// so that the figures are the store's and not the evaluation's.
const storesSLOs = 10

// storesDefinitions: the gate definitions of BenchmarkGateAPI and runs
// experiments more (run-0…), each of which can have one active run.
func storesDefinitions(runs int) string {
	var sb strings.Builder
	sb.WriteString(gateDefinitions(storesSLOs))
	for i := range runs {
		fmt.Fprintf(&sb, `---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: run-%d}
spec:
  hypotheses: [svc-0-steady]
`, i)
	}
	return sb.String()
}

// storeLatencies are one store's figures.
type storeLatencies struct {
	name          string
	gate          loadReport
	start, finish []time.Duration
}

// BenchmarkStores compares the run stores where the API meets them: the
// gate (which reads the active runs of its experiment on every call) at a
// fixed rate from a second process, then run starts and aborts one after
// the other, on bbolt (storage.path) and on PostgreSQL (storage.url, the
// Debian server of internal/testenv on loopback, fsync on). One Prometheus
// and 10 SLOs, evaluated every 10 s, serve both.
func BenchmarkStores(b *testing.B) {
	rate := envInt(b, StoresRateEnv, 1000)
	seconds := envInt(b, StoresSecondsEnv, 10)
	runs := envInt(b, StoresRunsEnv, 200)
	loadgen := loadgenBinary(b)

	target := testenv.NewTarget(b)
	tr := newTraffic(target, 4)
	for i := range storesSLOs {
		tr.add("http_requests_total", serviceName(i), serviceRPS(i), 0.0005)
	}
	prom := testenv.StartPrometheus(b, testenv.PromOptions{
		ScrapeInterval: serviceScrape,
		Targets:        []testenv.ScrapeTarget{target.ScrapeTarget(serviceJob)},
	})
	prom.WaitForQuery(b, `count_over_time(up{job="`+serviceJob+`"}[5m])`, func(v float64) bool { return v >= 2 }, 2*time.Minute)
	pg := testenv.StartPostgresWith(b, testenv.PostgresOptions{Durable: true})

	var results []storeLatencies
	for _, st := range []struct{ name, url string }{{"bbolt", ""}, {"postgres", pg.NewDatabase(b)}} {
		b.Run(st.name, func(b *testing.B) {
			o := slogateOptions{promURL: prom.URL(), definitions: storesDefinitions(runs), interval: gateInterval}
			if st.url != "" {
				o.args = []string{"--storage.url=" + st.url}
			}
			p := startSlogate(b, o)
			gateURL := p.url + "/api/v1/experiments/svc-0-chaos/gate"
			p.waitFor("the gate to open", 5*time.Minute, time.Second, gateOpen(context.Background(), gateURL))
			res := storeLatencies{name: st.name}
			for range b.N {
				res.gate = runLoadgen(b, p, loadgen, []string{"-rate", fmt.Sprint(rate), "-concurrency", "64", "-url", gateURL, "-duration", fmt.Sprintf("%ds", seconds)})
				res.start, res.finish = startAndAbort(b, p.url, runs)
			}
			if res.gate.Failed > 0 {
				b.Errorf("%d gate requests without an answer, first: %s", res.gate.Failed, res.gate.Error)
			}
			b.ReportMetric(res.gate.P50, "gate-ms-p50")
			b.ReportMetric(res.gate.P99, "gate-ms-p99")
			b.ReportMetric(ms(percentile(res.start, 0.5)), "start-ms-p50")
			b.ReportMetric(ms(percentile(res.start, 0.99)), "start-ms-p99")
			b.ReportMetric(ms(percentile(res.finish, 0.5)), "abort-ms-p50")
			b.ReportMetric(ms(percentile(res.finish, 0.99)), "abort-ms-p99")
			results = append(results, res)
			b.Log("\n" + storesTable(rate, results))
		})
	}
}

// startAndAbort starts one run of each of n experiments, then aborts each,
// one call at a time, and returns the latency of every call.
func startAndAbort(b *testing.B, base string, n int) (starts, aborts []time.Duration) {
	b.Helper()
	call := func(path string, want int) time.Duration {
		req, err := http.NewRequest(http.MethodPost, base+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		resp, err := svcHTTP.Do(req)
		took := time.Since(t0)
		if err != nil {
			b.Fatalf("POST %s: %v", path, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
		return took
	}
	var ids []string
	for i := range n {
		starts = append(starts, call(fmt.Sprintf("/api/v1/experiments/run-%d/runs", i), http.StatusCreated))
		ids = append(ids, fmt.Sprintf("run-%d", i))
	}
	for _, exp := range ids {
		id := activeRun(b, base, exp)
		aborts = append(aborts, call("/api/v1/runs/"+id+"/abort", http.StatusOK))
	}
	return starts, aborts
}

// activeRun is the ID of exp's active run.
func activeRun(b *testing.B, base, exp string) string {
	b.Helper()
	var out struct {
		Runs []struct {
			ID string `json:"id"`
		} `json:"runs"`
	}
	resp, err := svcHTTP.Get(base + "/api/v1/experiments/" + exp + "/runs?active=true")
	if err != nil {
		b.Fatalf("active runs of %s: %v", exp, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Runs) != 1 {
		b.Fatalf("active runs of %s: %d %v %+v", exp, resp.StatusCode, err, out)
	}
	return out.Runs[0].ID
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func storesTable(rate int, rs []storeLatencies) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "store\tgate p50 (%d/s)\tgate p99\tgate max\tslogate CPU\truns\tstart p50\tstart p99\tabort p50\tabort p99\t\n", rate)
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%.2fms\t%.2fms\t%.2fms\t%.2f cores\t%d\t%.2fms\t%.2fms\t%.2fms\t%.2fms\t\n", r.name,
			r.gate.P50, r.gate.P99, r.gate.Max, r.gate.slogateCPU, len(r.start),
			ms(percentile(r.start, 0.5)), ms(percentile(r.start, 0.99)), ms(percentile(r.finish, 0.5)), ms(percentile(r.finish, 0.99)))
	}
	_ = w.Flush()
	return sb.String()
}
