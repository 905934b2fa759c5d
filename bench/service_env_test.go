package bench

// What the service benchmarks share: a real `slogate serve` process, the
// synthetic traffic its SLOs are defined over, and readings of the process
// (/proc) and of its /metrics.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/internal/testenv"
)

// svcHTTP is the benchmarks' client for slogate's and Alertmanager's APIs.
var svcHTTP = &http.Client{Timeout: 10 * time.Second}

// slogateProc is one `slogate serve` child process (testenv.StartSlogate).
// It can be stopped (SIGTERM, so that it saves its snapshot) and started
// again with the same arguments, storage included.
type slogateProc struct {
	*testenv.Slogate
	tb  testing.TB
	url string
}

// slogateOptions configures startSlogate.
type slogateOptions struct {
	promURL     string
	amURL       string // empty: no Alertmanager
	definitions string // YAML
	interval    time.Duration
	minRange    time.Duration // zero: slogate's default (2m)
	storage     string        // zero: a new temporary directory
	args        []string      // more flags
}

// startSlogate writes the definitions and starts slogate; it returns at once
// (waitReady and waitBackfilled wait). The process is stopped when the
// benchmark ends; saving the snapshot of 10,000 SLOs may take a while.
func startSlogate(tb testing.TB, o slogateOptions) *slogateProc {
	tb.Helper()
	opts := testenv.SlogateOptions{
		PrometheusURL: o.promURL, Definitions: o.definitions, Interval: o.interval, MinRange: o.minRange,
		StoragePath: o.storage, NoWait: true, StopTimeout: 30 * time.Second, Args: o.args,
	}
	if o.amURL != "" {
		opts.AlertmanagerURLs = []string{o.amURL}
	}
	s := testenv.StartSlogate(tb, opts)
	return &slogateProc{Slogate: s, tb: tb, url: s.URL()}
}

func (p *slogateProc) pid() int { return p.Pid() }

// waitFor calls cond every poll until it holds; it fails the benchmark
// after timeout or when slogate exits. The pace is fixed: reading /metrics
// of 10,000 SLOs costs slogate CPU itself, which the benchmarks measure.
func (p *slogateProc) waitFor(what string, timeout, poll time.Duration, cond func() error) {
	p.tb.Helper()
	err := testenv.PollEvery(timeout, poll, func() error {
		if p.Exited() {
			return testenv.Permanent(errors.New("slogate exited"))
		}
		return cond()
	})
	if err != nil {
		p.tb.Fatalf("waiting for %s (up to %s): %v; log:\n%s", what, timeout, err, fileTail(p.LogPath(), 30))
	}
}

// metrics returns slogate's own metrics from /metrics as series → value
// (the series as written, e.g. `slogate_slo_backfill_pending` or
// `x{a="b"}`); nil when slogate does not answer. The per-SLO series of
// 10,000 SLOs are millions of lines nobody here reads.
func (p *slogateProc) metrics() map[string]float64 {
	m, err := p.Metrics("slogate_evaluation_", "slogate_slo_backfill_pending", "slogate_query_", "slogate_alerts_", "slogate_queries_")
	if err != nil {
		return nil
	}
	return m
}

// metric reads one series; ok is false when slogate does not answer or
// has no such series.
func (p *slogateProc) metric(series string) (float64, bool) {
	m := p.metrics()
	v, ok := m[series]
	return v, ok
}

// waitBackfilled waits until slogate answers and slogate_slo_backfill_pending
// is 0, and returns the time since the process started. It polls /-/ready
// first (the first cycle is the backfill at start), then reads /metrics:
// rendering the metrics of 10,000 SLOs takes a second of slogate's CPU and
// 60 MB of its memory, so polling them was most of what it measured.
func (p *slogateProc) waitBackfilled(timeout time.Duration) time.Duration {
	p.tb.Helper()
	var took time.Duration
	p.waitFor("/-/ready", timeout, 50*time.Millisecond, func() error {
		took = time.Since(p.StartedAt())
		if code := getStatus(context.Background(), p.url+"/-/ready"); code != http.StatusOK {
			return fmt.Errorf("/-/ready: %d", code)
		}
		return nil
	})
	p.waitFor("slogate_slo_backfill_pending to reach 0", timeout, time.Second, func() error {
		v, ok := p.metric("slogate_slo_backfill_pending")
		if !ok || v != 0 {
			took = time.Since(p.StartedAt())
			return fmt.Errorf("slogate_slo_backfill_pending %v (exported: %v)", v, ok)
		}
		return nil
	})
	return took
}

// saveHeapProfile writes slogate's heap profile (it runs with
// --web.enable-pprof) to path.
func (p *slogateProc) saveHeapProfile(path string) {
	p.tb.Helper()
	resp, err := svcHTTP.Get(p.url + "/debug/pprof/heap")
	if err != nil {
		p.tb.Fatalf("heap profile: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		p.tb.Fatalf("heap profile: %v", err)
	}
	p.tb.Logf("slogate's heap profile: %s", path)
}

// cycleCount is the number of finished evaluation cycles so far.
func (p *slogateProc) cycleCount() float64 {
	v, _ := p.metric("slogate_evaluation_duration_seconds_count")
	return v
}

// procStat is what /proc says about a process.
type procStat struct {
	cpu   float64 // user + system seconds
	hwmKB float64 // peak resident set (VmHWM)
	rssKB float64 // resident set now (VmRSS)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

func readProcStat(tb testing.TB, pid int) procStat {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("reading slogate's CPU time: %v", err)
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	st := procStat{cpu: (utime + stime) / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("reading slogate's memory: %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			st.hwmKB = v
		case "VmRSS":
			st.rssKB = v
		}
	}
	return st
}

// traffic is the synthetic request counters of many services, exposed by a
// testenv.Target: per service, http_requests_total-like counters by code,
// advanced at scrape time by rate × elapsed time, so that 40,000 series
// cost no goroutine. A service can be made to fail (a share of its
// requests answered 500) at any moment.
type traffic struct {
	mu       sync.Mutex
	last     time.Time
	services []*service
	codes    []string // "200", "404", "500", "503": the first half good
	// scrapes are the times of every collection, for "when did Prometheus
	// first have the failing data".
	scrapes []time.Time
}

// service is one SLO's traffic.
type service struct {
	metric   string // metric name, with _total
	name     string // value of the service label
	rps      float64
	errShare float64 // share of requests answered 5xx
	desc     *prometheus.Desc
	values   []float64 // per code
}

// newTraffic registers the services' counters on target. codes is 2 or 4:
// 200 and 500, or 200, 404, 500 and 503.
func newTraffic(target *testenv.Target, codes int) *traffic {
	tr := &traffic{last: time.Now(), codes: []string{"200", "500"}}
	if codes == 4 {
		tr.codes = []string{"200", "404", "500", "503"}
	}
	target.Registry().MustRegister(tr)
	return tr
}

// add adds a service; baseline errors are errShare of rps.
func (tr *traffic) add(metric, name string, rps, errShare float64) *service {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := &service{
		metric: metric, name: name, rps: rps, errShare: errShare,
		desc:   prometheus.NewDesc(metric, "synthetic requests by code", []string{"service", "code"}, nil),
		values: make([]float64, len(tr.codes)),
	}
	tr.services = append(tr.services, s)
	return s
}

// setErrShare changes a service's error share from now on.
func (tr *traffic) setErrShare(s *service, share float64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.advance(time.Now())
	s.errShare = share
}

// burst adds n failed requests to a service at once, split like its other
// errors, so that the first scrape after a fault shows it unmistakably.
func (tr *traffic) burst(s *service, n float64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.advance(time.Now())
	half := len(tr.codes) / 2
	for i := half; i < len(tr.codes); i++ {
		s.values[i] += n / float64(half)
	}
}

// firstScrapeAfter returns the first collection at or after t, if any.
func (tr *traffic) firstScrapeAfter(t time.Time) (time.Time, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range tr.scrapes {
		if !s.Before(t) {
			return s, true
		}
	}
	return time.Time{}, false
}

// advance moves every counter to now; tr.mu is held.
func (tr *traffic) advance(now time.Time) {
	dt := now.Sub(tr.last).Seconds()
	if dt <= 0 {
		return
	}
	tr.last = now
	half := len(tr.codes) / 2
	for _, s := range tr.services {
		good, bad := s.rps*(1-s.errShare)*dt, s.rps*s.errShare*dt
		for i := range s.values {
			if i < half {
				// 200 gets 90 % of the good requests, 404 the rest.
				share := 1.0
				if half == 2 {
					share = []float64{0.9, 0.1}[i]
				}
				s.values[i] += good * share
			} else {
				s.values[i] += bad / float64(half)
			}
		}
	}
}

// Describe sends nothing: traffic is an unchecked collector, so that
// 10,000 metric names need no descriptor list.
func (tr *traffic) Describe(chan<- *prometheus.Desc) {}

func (tr *traffic) Collect(ch chan<- prometheus.Metric) {
	tr.mu.Lock()
	now := time.Now()
	tr.advance(now)
	tr.scrapes = append(tr.scrapes, now)
	type point struct {
		desc       *prometheus.Desc
		name, code string
		value      float64
	}
	points := make([]point, 0, len(tr.services)*len(tr.codes))
	for _, s := range tr.services {
		for i, c := range tr.codes {
			points = append(points, point{s.desc, s.name, c, s.values[i]})
		}
	}
	tr.mu.Unlock()
	for _, pt := range points {
		ch <- prometheus.MustNewConstMetric(pt.desc, prometheus.CounterValue, pt.value, pt.name, pt.code)
	}
}

// envList reads a comma-separated list of positive integers from name, or
// returns def.
func envList(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	env := os.Getenv(name)
	if env == "" {
		return def
	}
	var out []int
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want a comma-separated list of positive integers", name, env)
		}
		out = append(out, n)
	}
	return out
}

// envInt reads one positive integer from name, or returns def.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	l := envList(tb, name, []int{def})
	if len(l) != 1 {
		tb.Fatalf("%s: want one number", name)
	}
	return l[0]
}

// envWords reads a comma-separated list of words from name, each one of
// allowed, or returns def.
func envWords(tb testing.TB, name string, def, allowed []string) []string {
	tb.Helper()
	env := os.Getenv(name)
	if env == "" {
		return def
	}
	var out []string
	for f := range strings.SplitSeq(env, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allowed, f) {
			tb.Fatalf("%s=%q: %q is not one of %v", name, env, f, allowed)
		}
		out = append(out, f)
	}
	return out
}

// quantile of sorted values (nearest rank below).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(fi.Size()-64<<10, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gateOpen is a waitFor condition: the gate at url answers 200.
func gateOpen(ctx context.Context, url string) func() error {
	return func() error {
		if code := getStatus(ctx, url); code != http.StatusOK {
			return fmt.Errorf("the gate answers %d", code)
		}
		return nil
	}
}

// getStatus GETs url and returns the status code (0 when no answer).
func getStatus(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := svcHTTP.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
