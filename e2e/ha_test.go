package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/internal/testenv"
)

// replicas are `slogate serve` processes sharing one PostgreSQL database.
type replicas []*server

// startReplicas starts n replicas of the definitions on database dbURL;
// replica i is named r<i> and gets args[i] too, if given.
func startReplicas(t *testing.T, promURL, dbURL string, n int, o serverOptions, args ...[]string) replicas {
	t.Helper()
	var rs replicas
	for i := range n {
		oi := o
		oi.promURL = promURL
		oi.storageURL = dbURL
		oi.args = append([]string{fmt.Sprintf("--storage.replica=r%d", i)}, o.args...)
		if i < len(args) {
			oi.args = append(oi.args, args[i]...)
		}
		rs = append(rs, startServer(t, oi))
	}
	return rs
}

type haRun struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Reason     string `json:"reason"`
	Supervisor string `json:"supervisor"`
	Timeline   []struct {
		At                              time.Time
		Hypothesis, Probe, SLO, Verdict string
		Message                         string
		Value                           *float64
	} `json:"timeline"`
}

func (s *server) run(id string) (haRun, int) {
	var r haRun
	code := s.do("GET", "/api/v1/runs/"+id, false, nil, &r)
	return r, code
}

// checkTimeline fails on a timeline with two entries for the same thing
// at the same time (two supervisors), or more than one terminal entry.
func checkTimeline(t *testing.T, r haRun) {
	t.Helper()
	seen := map[string]bool{}
	terminal := 0
	for _, e := range r.Timeline {
		k := fmt.Sprint(e.At.UnixNano(), e.Hypothesis, e.Probe, e.SLO, e.Verdict)
		if seen[k] {
			t.Errorf("run %s: duplicate timeline entry %+v", r.ID, e)
		}
		seen[k] = true
		if e.Hypothesis == "" && e.Probe == "" && e.SLO == "" && (e.Verdict == "aborted" || e.Verdict == "passed" || e.Verdict == "failed") {
			terminal++
		}
	}
	if terminal > 1 {
		t.Errorf("run %s: %d terminal entries", r.ID, terminal)
	}
}

// measurementGap is the longest time between two measurements of probe in
// the run's timeline (by the evaluation times they carry).
func measurementGap(r haRun, probe string) time.Duration {
	var last time.Time
	var gap time.Duration
	for _, e := range r.Timeline {
		if e.Probe != probe {
			continue
		}
		if !last.IsZero() {
			gap = max(gap, e.At.Sub(last))
		}
		last = e.At
	}
	return gap
}

// TestHAReplicas: three replicas on one PostgreSQL and one Prometheus.
// Twenty concurrent starts spread over them give exactly one 201; every
// replica answers the same run; the supervising replica is killed with
// kill -9 mid-run and another aborts the run when the hypothesis fails,
// with a timeline that has no duplicate.
func TestHAReplicas(t *testing.T) {
	pg := testenv.StartPostgres(t)
	shop := startShop(t)
	rs := startReplicas(t, shop.prom.URL(), pg.NewDatabase(t), 3, serverOptions{})
	for _, r := range rs {
		r.waitGate("the gate opens on every replica", 60*time.Second, http.StatusOK)
	}

	codes := make([]int, 20)
	ids := make([]string, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r haRun
			codes[i] = rs[i%3].do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &r)
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	var id string
	created := 0
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
			id = ids[i]
		case http.StatusConflict:
		default:
			t.Errorf("start %d on replica %d: %d", i, i%3, c)
		}
	}
	if created != 1 {
		t.Fatalf("%d starts answered 201 (%v), want exactly 1", created, codes)
	}

	// Every replica serves the run and names the same supervisor.
	var supervisor string
	rs[0].Eventually(30*time.Second, "a replica supervises the run", func() error {
		r, code := rs[0].run(id)
		if code != http.StatusOK || r.Supervisor == "" {
			return fmt.Errorf("GET run: %d %+v", code, r)
		}
		supervisor = r.Supervisor
		return nil
	})
	for i, s := range rs {
		s.Eventually(30*time.Second, "the replica agrees on the run", func() error {
			r, code := s.run(id)
			if code != http.StatusOK || r.State != "running" || r.Supervisor != supervisor {
				return fmt.Errorf("replica %d: %d %+v, want running supervised by %s", i, code, r, supervisor)
			}
			if _, code := s.gate(); code != http.StatusConflict {
				return fmt.Errorf("replica %d: the gate answers %d during the run, want 409", i, code)
			}
			return nil
		})
	}
	// The run is supervised: measurements arrive.
	rs[0].Eventually(30*time.Second, "the supervisor records measurements", func() error {
		if r, _ := rs[0].run(id); len(r.Timeline) < 3 {
			return fmt.Errorf("%d timeline entries", len(r.Timeline))
		}
		return nil
	})

	var victim int
	if _, err := fmt.Sscanf(supervisor, "r%d", &victim); err != nil {
		t.Fatalf("supervisor %q is not one of r0..r2", supervisor)
	}
	killed := time.Now()
	rs[victim].Kill()
	other := rs[(victim+1)%3]
	shop.setErrors(0.5) // the hypothesis fails: whoever supervises now must abort

	other.Eventually(60*time.Second, "another replica takes over and aborts the run", func() error {
		r, _ := other.run(id)
		if r.State != "aborted" {
			return fmt.Errorf("run is %s (supervisor %s)", r.State, r.Supervisor)
		}
		return nil
	})
	r, _ := other.run(id)
	if r.Supervisor == supervisor {
		t.Errorf("the run was aborted under the dead replica's name %s", supervisor)
	}
	if !strings.Contains(r.Reason, "shop-steady") {
		t.Errorf("abort reason %q does not name the failed hypothesis", r.Reason)
	}
	checkTimeline(t, r)
	// No gap: the measurements go on across the kill, one cycle after
	// the other, with at most the lease's expiry in between.
	gap := measurementGap(r, "error-rate")
	t.Logf("RELIABILITY kind=ha-replica-kill kills=1 takeover_gap_s=%.2f abort_after_kill_s=%.1f runs_lost=0 supervised_twice=0", gap.Seconds(), time.Since(killed).Seconds())
	if gap > 4*time.Second {
		t.Errorf("the measurements of the run stopped for %v across the kill (1s interval): the takeover took more than two intervals and the lease", gap)
	}
	// The survivors agree.
	for i, s := range rs {
		if i == victim {
			continue
		}
		got, _ := s.run(id)
		if got.State != "aborted" || len(got.Timeline) != len(r.Timeline) {
			t.Errorf("replica %d: %s with %d entries, want aborted with %d", i, got.State, len(got.Timeline), len(r.Timeline))
		}
	}
}

// TestHARollingRestart restarts three replicas one after the other while a
// client asks the gate 20 times a second, through the replicas that are
// ready, as a Kubernetes Service does: no request fails, and every answer
// is the right one (open: the shop is healthy).
func TestHARollingRestart(t *testing.T) {
	pg := testenv.StartPostgres(t)
	shop := startShop(t)
	rs := startReplicas(t, shop.prom.URL(), pg.NewDatabase(t), 3, serverOptions{})
	for _, r := range rs {
		r.waitGate("the gate opens on every replica", 60*time.Second, http.StatusOK)
	}
	var inRotation [3]atomic.Bool
	for i := range inRotation {
		inRotation[i].Store(true)
	}
	stop := make(chan struct{})
	var asked, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			i := n % 3
			for !inRotation[i].Load() {
				i = (i + 1) % 3
			}
			code, body, err := rs[i].Try("GET", "/api/v1/experiments/break-shop/gate", nil, false)
			asked.Add(1)
			if err != nil || code != http.StatusOK {
				failed.Add(1)
				mu.Lock()
				failures = append(failures, fmt.Sprintf("replica %d: %d %v %s", i, code, err, body))
				mu.Unlock()
			}
		}
	}()
	// Each step lets the client ask at least 20 more times, so every
	// replica takes traffic before it goes and after it comes back.
	moreRequests := func(n int64) {
		target := asked.Load() + n
		rs[0].Eventually(30*time.Second, "the client keeps asking", func() error {
			if a := asked.Load(); a < target {
				return fmt.Errorf("%d of %d requests made", a, target)
			}
			return nil
		})
	}
	for i, r := range rs {
		moreRequests(20)
		inRotation[i].Store(false) // the endpoint leaves the Service first
		r.Stop()
		r.Start() // waits for /ping: definitions loaded, first cycle done
		r.waitGate("the restarted replica answers", 30*time.Second, http.StatusOK)
		inRotation[i].Store(true)
	}
	moreRequests(20)
	close(stop)
	<-done
	t.Logf("RELIABILITY kind=ha-rolling-restart restarts=%d requests=%d failed=%d", len(rs), asked.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during the rolling restart: %v", failed.Load(), asked.Load(), failures)
	}
	if asked.Load() < 80 {
		t.Errorf("only %d requests were made", asked.Load())
	}
}

// TestHAPostgresDown kills PostgreSQL under two replicas with a run going:
// the gates answer unknown (503) with a reason meanwhile, and after the
// restart the run and its acknowledged timeline are all there.
func TestHAPostgresDown(t *testing.T) {
	pg := testenv.StartPostgres(t)
	shop := startShop(t)
	rs := startReplicas(t, shop.prom.URL(), pg.URL(), 2, serverOptions{})
	rs[0].waitGate("the gate opens", 60*time.Second, http.StatusOK)
	var started haRun
	if code := rs[0].do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &started); code != http.StatusCreated {
		t.Fatalf("start: %d", code)
	}
	rs[1].Eventually(30*time.Second, "measurements are stored", func() error {
		if r, _ := rs[1].run(started.ID); len(r.Timeline) < 3 {
			return fmt.Errorf("%d timeline entries", len(r.Timeline))
		}
		return nil
	})
	before, _ := rs[1].run(started.ID)

	pg.Kill()
	for i, s := range rs {
		s.Eventually(30*time.Second, "the gate is unknown with the database down", func() error {
			g, code := s.gate()
			if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(g.Reasons), "cannot read runs") {
				return fmt.Errorf("replica %d: %d %+v", i, code, g)
			}
			return nil
		})
		if code, _, err := s.Try("GET", "/health", nil, false); err != nil || code != http.StatusOK {
			t.Errorf("replica %d /health with the database down: %d %v (a dependency must not restart slogate)", i, code, err)
		}
		// The run calls say "retry later", not "broken".
		if code, body, err := s.Try("GET", "/api/v1/runs/"+started.ID, nil, false); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), "postgres://slogate@") {
			t.Errorf("replica %d GET run with the database down: %d %v %s, want 503 naming the database", i, code, err, body)
		}
		if code, body, err := s.Try("POST", "/api/v1/runs/"+started.ID+"/finish", nil, true); err != nil || code != http.StatusServiceUnavailable {
			t.Errorf("replica %d finish with the database down: %d %v %s, want 503", i, code, err, body)
		}
	}
	pg.Restart(t)
	for i, s := range rs {
		s.Eventually(60*time.Second, "the replicas reconnect", func() error {
			r, code := s.run(started.ID)
			if code != http.StatusOK {
				return fmt.Errorf("replica %d: GET run %d", i, code)
			}
			if len(r.Timeline) < len(before.Timeline) {
				return fmt.Errorf("replica %d: %d timeline entries, %d were stored before", i, len(r.Timeline), len(before.Timeline))
			}
			for j := range before.Timeline {
				if a, b := before.Timeline[j], r.Timeline[j]; !a.At.Equal(b.At) || a.Verdict != b.Verdict || a.Probe != b.Probe {
					return fmt.Errorf("replica %d: entry %d changed: %+v → %+v", i, j, a, b)
				}
			}
			return nil
		})
	}
	// Still one run, still supervised.
	if code := rs[1].do("POST", "/api/v1/experiments/break-shop/runs", true, nil, nil); code != http.StatusConflict {
		t.Errorf("second start after the outage: %d, want 409", code)
	}
	n := len(before.Timeline)
	rs[0].Eventually(30*time.Second, "supervision goes on", func() error {
		if r, _ := rs[0].run(started.ID); len(r.Timeline) <= n {
			return fmt.Errorf("%d entries", len(r.Timeline))
		}
		return nil
	})
	r, _ := rs[0].run(started.ID)
	checkTimeline(t, r)
	t.Logf("RELIABILITY kind=ha-postgres-down replicas=%d timeline_entries_kept=%d runs_lost=0 entries_lost=0", len(rs), len(before.Timeline))
}

// shardedDefinitions: an experiment whose gate depends on two SLOs that
// two shards evaluate, one each (TestHAShards checks the split).
const shardedDefinitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  objective: 99
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total[{{.window}}]))
  gate: {maxBurnRate: 1000, burnRateWindow: 5m}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-checkout}
spec:
  service: shop
  objective: 99
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total[{{.window}}]))
  gate: {maxBurnRate: 2, burnRateWindow: 5m}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: shop-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))
      tolerance: "< 0.1"
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop}
spec:
  hypotheses: [shop-steady]
  slos: [shop-availability, shop-checkout]
  recovery: 10s
`

// TestHAShards: two shards on one database. Each gate depends on an SLO
// the other shard evaluates: it opens from the other's published status,
// closes when that SLO burns, and turns unknown when the other shard is
// gone (a stale status is never a pass).
func TestHAShards(t *testing.T) {
	if a, b := evaluator.ShardOf("shop-availability", 2), evaluator.ShardOf("shop-checkout", 2); a == b {
		t.Fatalf("both SLOs hash to shard %d: rename one so that the shards split them", a)
	}
	pg := testenv.StartPostgres(t)
	shop := startShop(t)
	db := pg.NewDatabase(t)
	o := serverOptions{definitions: shardedDefinitions}
	rs := startReplicas(t, shop.prom.URL(), db, 2, o, []string{"--shard.count=2", "--shard.index=0"}, []string{"--shard.count=2", "--shard.index=1"})
	for _, r := range rs {
		r.waitGate("each shard's gate opens from both SLOs", 60*time.Second, http.StatusOK)
	}
	shop.setErrors(0.5) // a burn rate of 50 on shop-checkout
	for i, r := range rs {
		r.Eventually(60*time.Second, "both gates close on the burn", func() error {
			g, code := r.gate()
			if code != http.StatusConflict || !strings.Contains(fmt.Sprint(g.Reasons), "shop-checkout") {
				return fmt.Errorf("replica %d: %d %+v", i, code, g)
			}
			return nil
		})
	}
	shop.setErrors(0)
	// The shard that evaluates shop-checkout goes away: the other shard
	// cannot know its burn rate any more.
	owner := evaluator.ShardOf("shop-checkout", 2)
	rs[owner].Kill()
	survivor := rs[1-owner]
	survivor.Eventually(60*time.Second, "the gate turns unknown", func() error {
		g, code := survivor.gate()
		if code != http.StatusServiceUnavailable || !g.hasReason("stale") {
			return fmt.Errorf("%d %+v", code, g)
		}
		return nil
	})
}
