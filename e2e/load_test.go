package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// The load generator runs in a second process, so that its goroutines, GC
// and -race overhead do not share a scheduler with the parent test, and
// talks to slogate over loopback only. It is this test binary again, asked
// to run TestLoadHelperProcess by these variables.
const (
	loadHelperEnv  = "E2E_LOAD_HELPER"
	loadURLEnv     = "E2E_LOAD_URL"
	loadTokenEnv   = "E2E_LOAD_TOKEN"
	loadWorkersEnv = "E2E_LOAD_WORKERS"
	loadCountEnv   = "E2E_LOAD_REQUESTS"
	loadReportTag  = "LOAD-REPORT "
)

// Load size: workers × requests HTTP calls in all, each worker pausing
// loadPause between its calls so that the load lasts a few seconds and
// overlaps a dozen reloads (without it, 1,600 calls take 0.4 s).
const (
	loadWorkers  = 8
	loadRequests = 200
	loadPause    = 10 * time.Millisecond
)

// loadReport is what the helper prints: per endpoint, the status codes seen
// and latency percentiles.
type loadReport struct {
	Requests  int                      `json:"requests"`
	Endpoints map[string]*endpointLoad `json:"endpoints"`
	// Failures are requests without an answer (connection refused or
	// reset, timeouts), the first few.
	Failures []string `json:"failures"`
	Failed   int      `json:"failed"`
}

type endpointLoad struct {
	Codes map[int]int   `json:"codes"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`

	latencies []time.Duration
}

// expectedCodes are the answers a healthy server may give under this load:
// a gate closed by the active run or unknown for a moment after a reload,
// run starts refused while another run is active, and finish or abort of a
// run that the supervisor ended first.
var expectedCodes = map[string][]int{
	"GET gate":    {http.StatusOK, http.StatusConflict, http.StatusServiceUnavailable},
	"GET slos":    {http.StatusOK},
	"POST runs":   {http.StatusCreated, http.StatusConflict},
	"GET wait":    {http.StatusOK},
	"POST finish": {http.StatusOK, http.StatusConflict},
	"POST abort":  {http.StatusOK, http.StatusConflict},
}

// TestLoad runs the load generator against a real `slogate serve` while the
// definitions are reloaded every 200 ms, alternating between two valid
// sets: no unexpected status, no 5xx but an unknown gate's 503, no failed
// connection, and every reload accepted.
func TestLoad(t *testing.T) {
	runLoad(t, loadWorkers, loadRequests, 90*time.Second)
}

// runLoad is TestLoad with workers × requests calls, given at most timeout
// (the soak build runs it for minutes).
func runLoad(t *testing.T, workers, requests int, timeout time.Duration) {
	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL()})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	// The second set adds an SLO and an experiment; break-shop, which the
	// load uses, is in both.
	sets := [2]string{definitions, definitionsWide}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		loadHelperEnv+"=1", loadURLEnv+"="+srv.URL(), loadTokenEnv+"="+srv.Token(),
		loadWorkersEnv+"="+strconv.Itoa(workers), loadCountEnv+"="+strconv.Itoa(requests))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	reloads, rejected := 0, 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var helperErr error
loop:
	for {
		select {
		case helperErr = <-done:
			break loop
		case <-tick.C:
			writeAtomically(t, srv.DefinitionsPath(), sets[reloads%2])
			var answer struct{ Error string }
			if code := srv.do("POST", "/-/reload", true, nil, &answer); code != http.StatusOK {
				rejected++
				t.Errorf("reload %d: %d %s", reloads, code, answer.Error)
			}
			reloads++
		}
	}
	if helperErr != nil {
		t.Fatalf("load generator: %v\nstderr:\n%s\nstdout:\n%s", helperErr, stderr.String(), stdout.String())
	}
	if srv.Exited() {
		t.Fatal("slogate exited under load")
	}

	report := parseLoadReport(t, stdout.String())
	t.Logf("%d requests from %d workers; %d reloads (%d rejected) meanwhile\n%s",
		report.Requests, workers, reloads, rejected, report.table())
	if report.Requests != workers*requests {
		t.Errorf("%d requests made, want %d", report.Requests, workers*requests)
	}
	if report.Failed > 0 {
		t.Errorf("%d requests without an answer, e.g.:\n%s", report.Failed, strings.Join(report.Failures, "\n"))
	}
	for name, e := range report.Endpoints {
		for code, n := range e.Codes {
			if !slices.Contains(expectedCodes[name], code) {
				t.Errorf("%s: %d answers with status %d, expected only %v", name, n, code, expectedCodes[name])
			}
		}
	}
	if reloads < 3 {
		t.Errorf("only %d reloads during the load: the load was too short to overlap them", reloads)
	}
	report.logFigures(t, reloads, rejected)
	if report.Endpoints["POST runs"].Codes[http.StatusCreated] == 0 {
		t.Error("no run was started during the load")
	}
}

// writeAtomically replaces path by renaming a complete file over it, so that
// a reload (or the file watcher) never reads it half-written.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func parseLoadReport(t *testing.T, stdout string) *loadReport {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), loadReportTag); ok {
			var r loadReport
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("load report %q: %v", line, err)
			}
			return &r
		}
	}
	t.Fatalf("no load report in the helper's output:\n%s", stdout)
	return nil
}

func (r *loadReport) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "endpoint\tcount\tp50\tp90\tp99\tmax\tstatus codes\t")
	names := make([]string, 0, len(r.Endpoints))
	for name := range r.Endpoints {
		names = append(names, name)
	}
	sort.Strings(names)
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	}
	for _, name := range names {
		e := r.Endpoints[name]
		codes := make([]int, 0, len(e.Codes))
		count := 0
		for c, n := range e.Codes {
			codes = append(codes, c)
			count += n
		}
		sort.Ints(codes)
		var cs []string
		for _, c := range codes {
			cs = append(cs, fmt.Sprintf("%d×%d", c, e.Codes[c]))
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, count, ms(e.P50), ms(e.P90), ms(e.P99), ms(e.Max), strings.Join(cs, " "))
	}
	_ = w.Flush()
	return b.String()
}

// TestLoadHelperProcess is the load generator of TestLoad, run in a child
// process; on its own it does nothing.
func TestLoadHelperProcess(t *testing.T) {
	if os.Getenv(loadHelperEnv) != "1" {
		t.Skip("the load generator of TestLoad; runs only in the process TestLoad starts")
	}
	base, token := os.Getenv(loadURLEnv), os.Getenv(loadTokenEnv)
	workers, err1 := strconv.Atoi(os.Getenv(loadWorkersEnv))
	count, err2 := strconv.Atoi(os.Getenv(loadCountEnv))
	if base == "" || err1 != nil || err2 != nil {
		t.Fatalf("bad environment: url %q, workers %v, requests %v", base, err1, err2)
	}
	g := &loadGen{
		base: base, token: token,
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: workers},
		},
		report: &loadReport{Endpoints: map[string]*endpointLoad{}},
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.worker(w, count)
		}()
	}
	wg.Wait()
	g.report.finish()
	out, err := json.Marshal(g.report)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(loadReportTag + string(out))
}

type loadGen struct {
	base, token string
	client      *http.Client

	mu     sync.Mutex
	report *loadReport
}

// worker makes exactly count requests: it asks the gate, lists the SLOs
// and tries to start a run; a run it started is long-polled briefly, then
// finished or aborted in turn.
func (g *loadGen) worker(w, count int) {
	var run string
	for i := 0; i < count; i++ {
		// The load's pace between calls, not a wait for anything.
		time.Sleep(loadPause)
		switch {
		case run != "" && i%2 == 0:
			g.call("GET wait", "GET", "/api/v1/runs/"+run+"/wait?timeout=50ms", nil)
		case run != "":
			if (w+i)%4 == 1 {
				g.call("POST finish", "POST", "/api/v1/runs/"+run+"/finish", nil)
			} else {
				g.call("POST abort", "POST", "/api/v1/runs/"+run+"/abort", strings.NewReader(`{"reason": "load test"}`))
			}
			run = ""
		case i%3 == 0:
			g.call("GET gate", "GET", "/api/v1/experiments/break-shop/gate", nil)
		case i%3 == 1:
			g.call("GET slos", "GET", "/api/v1/slos", nil)
		default:
			var started struct{ ID string }
			if g.call("POST runs", "POST", "/api/v1/experiments/break-shop/runs", nil, &started) == http.StatusCreated {
				run = started.ID
			}
		}
	}
}

// call makes one request and records its status and latency; it returns
// the status, 0 when there was no answer.
func (g *loadGen) call(name, method, path string, body io.Reader, out ...any) int {
	req, err := http.NewRequest(method, g.base+path, body)
	if err != nil {
		panic(err)
	}
	if method == "POST" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.report.Requests++
	if err != nil {
		if g.report.Failed++; len(g.report.Failures) < 10 {
			g.report.Failures = append(g.report.Failures, fmt.Sprintf("%s %s: %v", method, path, err))
		}
		return 0
	}
	e := g.report.Endpoints[name]
	if e == nil {
		e = &endpointLoad{Codes: map[int]int{}}
		g.report.Endpoints[name] = e
	}
	e.Codes[resp.StatusCode]++
	e.latencies = append(e.latencies, took)
	for _, o := range out {
		_ = json.Unmarshal(data, o)
	}
	return resp.StatusCode
}

func (r *loadReport) finish() {
	for _, e := range r.Endpoints {
		slices.Sort(e.latencies)
		at := func(q float64) time.Duration { return e.latencies[int(q*float64(len(e.latencies)-1))] }
		e.P50, e.P90, e.P99, e.Max = at(0.5), at(0.9), at(0.99), at(1)
	}
}

// logFigures logs the load's figures in the greppable form that
// scripts/reliability.sh collects into RELIABILITY.md.
func (r *loadReport) logFigures(t *testing.T, reloads, rejected int) {
	t.Helper()
	answered, unexpected, gate503, other5xx := 0, 0, 0, 0
	names := slices.Sorted(maps.Keys(r.Endpoints))
	for _, name := range names {
		e := r.Endpoints[name]
		for code, n := range e.Codes {
			answered += n
			if !slices.Contains(expectedCodes[name], code) {
				unexpected += n
			}
			switch {
			case code == http.StatusServiceUnavailable && name == "GET gate":
				gate503 += n
			case code >= 500:
				other5xx += n
			}
		}
	}
	t.Logf("RELIABILITY kind=load requests=%d answered=%d no_answer=%d unexpected_status=%d status_5xx=%d unknown_gate_503=%d reloads=%d reloads_rejected=%d",
		r.Requests, answered, r.Failed, unexpected, other5xx, gate503, reloads, rejected)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, name := range names {
		e := r.Endpoints[name]
		n := 0
		for _, c := range e.Codes {
			n += c
		}
		t.Logf("RELIABILITY kind=load-latency endpoint=%q count=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f",
			name, n, ms(e.P50), ms(e.P99), ms(e.Max))
	}
}
