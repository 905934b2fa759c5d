package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/faultproxy"
	"github.com/slogate/slogate/internal/testenv"
)

// hostileFault is a Prometheus-compatible backend that answers, but
// wrongly or hugely, between a real `slogate serve` and a real Prometheus.
type hostileFault struct {
	name   string
	inject func(p *faultproxy.Proxy)
	// closes says the gate must close during the fault (a failed query);
	// otherwise (warnings) it must stay open.
	closes bool
	// badResult says slogate_query_failures_total{reason="bad_result"}
	// must grow.
	badResult bool
	// aborts says the fault makes the probe unknown, which aborts a run;
	// the SLO's faults only make its spend unknown, and the run goes on.
	aborts bool
	// logs is what slogate's log must say during the fault (that the
	// fault reached it), if anything.
	logs string
}

// sloVector rewrites the answers of the SLO's slice queries (sums of
// rates, no division) and leaves the probe's ratio alone, also where
// slogate asks them together in one union.
func sloVector(value string) func(string, []byte) []byte {
	set := func(q string, s []faultproxy.Sample) []faultproxy.Sample {
		if strings.Contains(q, "/") {
			return s
		}
		for i := range s {
			s[i].Value = value
		}
		return s
	}
	return func(q string, body []byte) []byte {
		if strings.Contains(q, "__slogate_union") {
			return faultproxy.RewriteTerms(q, body, set)
		}
		return faultproxy.RewriteVector(body, func(s []faultproxy.Sample) []faultproxy.Sample { return set(q, s) })
	}
}

// hugeText is 5 MB of a backend's error or warning text.
var hugeText = strings.Repeat("x", 5<<20)

var hostileFaults = []hostileFault{
	// First, so that the peak RSS logged after it is its own.
	{name: "100 MB answer", inject: func(p *faultproxy.Proxy) { p.Huge(100 << 20) }, closes: true, badResult: true, aborts: true},
	{name: "+Inf SLO answers", inject: func(p *faultproxy.Proxy) { p.Rewrite(sloVector("+Inf")) }, closes: true, badResult: true},
	{name: "-Inf SLO answers", inject: func(p *faultproxy.Proxy) { p.Rewrite(sloVector("-Inf")) }, closes: true, badResult: true},
	{name: "negative SLO answers", inject: func(p *faultproxy.Proxy) { p.Rewrite(sloVector("-5")) }, closes: true, badResult: true},
	{name: "5 MB error", inject: func(p *faultproxy.Proxy) {
		b, _ := json.Marshal(map[string]string{"status": "error", "errorType": "execution", "error": hugeText})
		p.Status(http.StatusUnprocessableEntity, string(b))
	}, closes: true, aborts: true},
	{name: "5 MB warnings on every answer", inject: func(p *faultproxy.Proxy) {
		// The warnings are encoded once and spliced into each answer:
		// encoding 5 MB per answer in this (race-instrumented) process
		// took a quarter of a second, which on a loaded machine made the
		// proxy, not slogate, too slow for a 1 s interval.
		warnings, _ := json.Marshal([]string{hugeText, "second warning", "3", "4", "5", "6", "7"})
		prefix := append(append([]byte(`{"warnings":`), warnings...), ',')
		p.Rewrite(func(_ string, body []byte) []byte {
			if len(body) < 2 || body[0] != '{' || !json.Valid(body) {
				return body
			}
			return append(append([]byte(nil), prefix...), body[1:]...)
		})
	}, logs: "prometheus warned about a query"},
	{name: "matrix for the probe", inject: func(p *faultproxy.Proxy) {
		p.Rewrite(func(q string, body []byte) []byte {
			if !strings.Contains(q, "/") {
				return body
			}
			return []byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"0.001"]]}]}}`)
		})
	}, closes: true, badResult: true, aborts: true},
}

// TestHostileBackend puts a backend that answers wrongly or hugely between
// `slogate serve` and Prometheus, one fault after the other: ±Inf and
// negative SLO answers, a 5 MB error, 5 MB warnings on every answer, a
// matrix where a vector is due and a 100 MB answer. During each, the gate
// closes (or, for warnings, which fail nothing, stays open), bad answers
// are counted as bad_result, and what slogate copies of the backend's text
// stays bounded: the gate answer, the SLO list, a run aborted by the fault
// and the log. slogate's peak memory stays under 200 MiB through the 100 MB
// answers (prometheus.max-response-bytes). After each fault the gate opens
// again without a restart.
func TestHostileBackend(t *testing.T) {
	sh := startShop(t)
	proxy := faultproxy.New(t, sh.prom.URL())
	srv := startServer(t, serverOptions{promURL: proxy.URL()})

	for _, f := range hostileFaults {
		srv.waitGate("the gate to open before "+f.name, 60*time.Second, http.StatusOK)
		var run runAnswer
		if f.closes {
			// A run the fault aborts: its reason and timeline must not
			// carry the backend's text whole.
			if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated {
				t.Fatalf("%s: run start: %d %+v", f.name, code, run)
			}
		}
		badBefore := queryFailures(t, srv, "bad_result")
		logBefore := fileSize(t, srv.LogPath())

		f.inject(proxy)
		if f.closes {
			srv.Eventually(30*time.Second, "the gate to close during "+f.name, func() error {
				if g, code := srv.gate(); code == http.StatusOK {
					return fmt.Errorf("the gate answers %d %+v", code, g)
				}
				return nil
			})
		}
		from := srv.evaluations()
		srv.Eventually(60*time.Second, "3 evaluations during "+f.name, func() error {
			g, code := srv.gate()
			if f.closes && (code == http.StatusOK || g.Status == "open") {
				t.Fatalf("%s: the gate opened during the fault: %+v", f.name, g)
			}
			if !f.closes && code != http.StatusOK {
				t.Fatalf("%s: the gate closed (%d %+v); warnings fail no query", f.name, code, g)
			}
			if n := srv.evaluations(); n < from+3 {
				return fmt.Errorf("%v evaluations so far", n-from)
			}
			return nil
		})

		// What slogate copies of the backend's answers stays bounded.
		for _, path := range []string{"/api/v1/experiments/break-shop/gate", "/api/v1/slos", "/api/v1/hypotheses"} {
			if _, body, err := srv.Try("GET", path, nil, false); err != nil || len(body) > 64<<10 {
				t.Errorf("%s: GET %s: %d bytes (%v), want at most 64 KiB", f.name, path, len(body), err)
			}
		}
		if run.ID != "" {
			srv.Eventually(30*time.Second, "the run to be read during "+f.name, func() error {
				code, body, err := srv.Try("GET", "/api/v1/runs/"+run.ID, nil, false)
				if err != nil || code != http.StatusOK {
					return fmt.Errorf("GET run: %d %v", code, err)
				}
				if len(body) > 64<<10 {
					t.Fatalf("%s: the run is %d bytes, want at most 64 KiB: %.300s", f.name, len(body), body)
				}
				var r runAnswer
				if err := json.Unmarshal(body, &r); err != nil {
					return err
				}
				if f.aborts && r.State != "aborted" {
					return fmt.Errorf("run %s, want aborted", r.State)
				}
				return nil
			})
			if !f.aborts {
				if code := srv.do("POST", "/api/v1/runs/"+run.ID+"/abort", true, strings.NewReader(`{"reason": "next fault"}`), nil); code != http.StatusOK {
					t.Fatalf("%s: abort: %d", f.name, code)
				}
			}
		}
		if f.logs != "" {
			if log := logSince(t, srv.LogPath(), logBefore); !strings.Contains(log, f.logs) {
				t.Errorf("%s: the log does not say %q: the fault did not reach slogate", f.name, f.logs)
			}
		}
		if grew := fileSize(t, srv.LogPath()) - logBefore; grew > 256<<10 {
			t.Errorf("%s: the log grew %d bytes over 3 evaluations, want at most 256 KiB", f.name, grew)
		}
		if bad := queryFailures(t, srv, "bad_result"); f.badResult && bad <= badBefore {
			t.Errorf("%s: slogate_query_failures_total{reason=\"bad_result\"} did not grow (%g)", f.name, bad)
		}
		proxy.Pass()
		t.Logf("RELIABILITY kind=hostile-backend fault=%q gate_opened=0 peak_rss_mib=%d", f.name, peakRSS(t, srv.Pid())>>20)
	}
	srv.waitGate("the gate to open after the last fault", 60*time.Second, http.StatusOK)
	hwm := peakRSS(t, srv.Pid())
	if hwm > 200<<20 {
		t.Errorf("slogate's peak RSS is %d MiB after 100 MB answers, want under 200 MiB", hwm>>20)
	}
	t.Logf("RELIABILITY kind=hostile-backends total=%d peak_rss_mib=%d", len(hostileFaults), hwm>>20)
}

// TestSilentBackendClosesGate measures how long the gate stays open once
// the backend stops answering (every request hangs), with a 5 s interval
// and a 2 s query timeout: it must read unknown once its newest data is
// older than the stale limit, min(2.5 × 5 s, 5 s × 1.25 + 2 s) = 8.25 s,
// whatever the evaluation cycle is waiting for.
func TestSilentBackendClosesGate(t *testing.T) {
	const interval, timeout, staleAfter = 5 * time.Second, 2 * time.Second, 8250 * time.Millisecond
	sh := startShop(t)
	proxy := faultproxy.New(t, sh.prom.URL())
	srv := startServer(t, serverOptions{promURL: proxy.URL(), interval: interval, args: []string{"--prometheus.timeout=" + timeout.String()}})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	silent := time.Now()
	proxy.Hang()
	var closed time.Time
	var g gateAnswer
	err := testenv.PollEvery(time.Minute, 20*time.Millisecond, func() error {
		var code int
		if g, code = srv.gate(); code == http.StatusOK {
			return fmt.Errorf("the gate answers %d", code)
		}
		closed = time.Now()
		return nil
	})
	if err != nil {
		t.Fatalf("the gate did not close within a minute of the backend going silent: %v", err)
	}
	if g.Status != "unknown" {
		t.Errorf("gate %s %+v, want unknown", g.Status, g.Reasons)
	}
	// The newest data is the last cycle in which every query answered;
	// the gate may close sooner (a cycle that gave up publishes its
	// errors), never later than the stale limit after it. A second covers
	// this test's own polling on a busy machine.
	m, err := srv.Metrics("slogate_last_successful_evaluation_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	lastGood := time.Unix(0, int64(m["slogate_last_successful_evaluation_timestamp_seconds"]*1e9))
	age := closed.Sub(lastGood)
	if age > staleAfter+time.Second {
		t.Errorf("the gate closed %s after the newest data (%s), want at most the stale limit %s", age.Round(time.Millisecond), lastGood.Format(time.TimeOnly), staleAfter)
	}
	proxy.Pass()
	srv.waitGate("the gate to open again", time.Minute, http.StatusOK)
	t.Logf("RELIABILITY kind=silent-backend interval=%s timeout=%s stale_after=%s since_silence_s=%.2f data_age_s=%.2f",
		interval, timeout, staleAfter, closed.Sub(silent).Seconds(), age.Seconds())
}

// queryFailures reads slogate_query_failures_total{reason=...}.
func queryFailures(t *testing.T, srv *server, reason string) float64 {
	t.Helper()
	m, err := srv.Metrics("slogate_query_failures_total")
	if err != nil {
		t.Fatal(err)
	}
	return m[`slogate_query_failures_total{reason="`+reason+`"}`]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince is what the file at path holds after its first offset bytes.
func logSince(t *testing.T, path string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

// peakRSS is VmHWM of process pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
