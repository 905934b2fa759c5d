package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/faultproxy"
	"github.com/slogate/slogate/internal/testenv"
)

// promFault is one way Prometheus misbehaves, as `slogate serve` sees it
// through internal/faultproxy.
type promFault struct {
	name   string
	inject func(e *faultCycleEnv)
	// heal ends the fault; default: the proxy passes again.
	heal func(e *faultCycleEnv)
}

var promFaults = []promFault{
	{name: "hang", inject: func(e *faultCycleEnv) { e.proxy.Hang() }},
	{name: "slow", inject: func(e *faultCycleEnv) { e.proxy.Slow(3 * time.Second) }}, // prometheus.timeout is 2s
	{name: "500", inject: func(e *faultCycleEnv) { e.proxy.Status(http.StatusInternalServerError, "") }},
	{name: "503", inject: func(e *faultCycleEnv) {
		e.proxy.Status(http.StatusServiceUnavailable, `{"status":"error","errorType":"unavailable","error":"overloaded"}`)
	}},
	{name: "reset", inject: func(e *faultCycleEnv) { e.proxy.Drop() }},
	{name: "hangup", inject: func(e *faultCycleEnv) { e.proxy.Hangup() }},
	{name: "cut", inject: func(e *faultCycleEnv) { e.proxy.Cut(40) }},
	{name: "NaN", inject: func(e *faultCycleEnv) {
		e.proxy.Rewrite(probeVector(func(s []faultproxy.Sample) []faultproxy.Sample {
			for i := range s {
				s[i].Value = "NaN"
			}
			return s
		}))
	}},
	{name: "empty", inject: func(e *faultCycleEnv) {
		e.proxy.Rewrite(probeVector(func([]faultproxy.Sample) []faultproxy.Sample { return nil }))
	}},
	{name: "several series", inject: func(e *faultCycleEnv) {
		// A second series out of every tolerance next to each true one.
		e.proxy.Rewrite(probeVector(func(s []faultproxy.Sample) []faultproxy.Sample {
			out := append([]faultproxy.Sample(nil), s...)
			for _, x := range s {
				m := map[string]string{"replica": "b"}
				for k, v := range x.Metric {
					m[k] = v
				}
				out = append(out, faultproxy.Sample{Metric: m, Time: x.Time, Value: "0.9"})
			}
			return out
		}))
	}},
	{
		name:   "killed",
		inject: func(e *faultCycleEnv) { e.shop.prom.Kill() },
		heal:   func(e *faultCycleEnv) { e.shop.prom.Restart(e.t) },
	},
}

// probeVector rewrites the answers of the hypothesis' probe, a ratio; the
// SLO's queries (sums of rates) pass unchanged, so that a wrong answer does
// not spend the SLO's budget for good and keep the gate closed after the
// fault.
func probeVector(fn func([]faultproxy.Sample) []faultproxy.Sample) func(string, []byte) []byte {
	return func(q string, body []byte) []byte {
		if !strings.Contains(q, "/") {
			return body
		}
		return faultproxy.RewriteVector(body, fn)
	}
}

type faultCycleEnv struct {
	t     *testing.T
	shop  *shop
	proxy *faultproxy.Proxy
	srv   *server
}

// TestPrometheusFaultCycle puts each Prometheus fault once, in a random
// (seeded) order, between a real `slogate serve` and a real Prometheus:
// during every fault the gate closes and, once closed, never answers open
// until the fault is gone; /health stays 200; after each fault the gate
// opens again without a restart. The soak build cycles faults for minutes.
//
// It runs on both stores: a Prometheus fault must close the gate whether
// runs live in bbolt or in PostgreSQL.
func TestPrometheusFaultCycle(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { runFaultCycles(t, len(promFaults), 0, "") })
	t.Run("postgres", func(t *testing.T) {
		runFaultCycles(t, len(promFaults), 0, testenv.StartPostgres(t).NewDatabase(t))
	})
}

// runFaultCycles injects faults until n were tried or, if d > 0, until d
// has passed; on PostgreSQL when storageURL is set.
func runFaultCycles(t *testing.T, n int, d time.Duration, storageURL string) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, v, err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0xfa17))
	t.Logf("fault schedule: seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)

	sh := startShop(t)
	e := &faultCycleEnv{t: t, shop: sh, proxy: faultproxy.New(t, sh.prom.URL())}
	e.srv = startServer(t, serverOptions{promURL: e.proxy.URL(), storageURL: storageURL})

	order := rng.Perm(len(promFaults))
	tried := map[string]int{}
	start := time.Now()
	for i := 0; ; i++ {
		if (d > 0 && time.Since(start) > d) || (d == 0 && i == n) {
			break
		}
		f := promFaults[order[i%len(order)]]
		if d > 0 {
			f = promFaults[rng.IntN(len(promFaults))]
		}
		e.srv.waitGate("the gate to open before "+f.name, 60*time.Second, http.StatusOK)
		requests := e.proxy.Requests()
		f.inject(e)
		e.srv.Eventually(30*time.Second, "the gate to close during "+f.name, func() error {
			if g, code := e.srv.gate(); code == http.StatusOK {
				return fmt.Errorf("the gate answers %d %+v", code, g)
			}
			return nil
		})
		// Held for a few evaluations, with or without a random extra: a
		// closed gate must stay closed, and /health answer, all along.
		from, hold := e.srv.evaluations(), float64(2+rng.IntN(2))
		e.srv.Eventually(60*time.Second, fmt.Sprintf("%v evaluations during %s", hold, f.name), func() error {
			if g, code := e.srv.gate(); code == http.StatusOK || g.Status == "open" {
				t.Fatalf("%s: the gate opened again during the fault: %+v", f.name, g)
			}
			if code := e.srv.do("GET", "/health", false, nil, nil); code != http.StatusOK {
				t.Fatalf("%s: /health answered %d during a Prometheus fault, want 200", f.name, code)
			}
			if n := e.srv.evaluations(); n < from+hold {
				return fmt.Errorf("%v evaluations so far", n-from)
			}
			return nil
		})
		if f.name != "killed" && e.proxy.Requests() == requests {
			t.Fatalf("%s: no query went through the proxy during the fault", f.name)
		}
		if f.heal != nil {
			f.heal(e)
		} else {
			e.proxy.Pass()
		}
		tried[f.name]++
	}
	e.srv.waitGate("the gate to open after the last fault", 60*time.Second, http.StatusOK)
	if e.srv.Exited() {
		t.Fatal("slogate exited")
	}
	total := 0
	for _, f := range promFaults {
		total += tried[f.name]
		t.Logf("RELIABILITY kind=prometheus-fault-e2e fault=%q n=%d false_open=0", f.name, tried[f.name])
	}
	t.Logf("RELIABILITY kind=prometheus-faults-e2e total=%d kinds=%d seed=%d", total, len(tried), seed)
}
