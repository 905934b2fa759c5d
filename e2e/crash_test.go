package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/pgstore"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/testenv"
)

// Environment of the kill -9 test: how many kills, and the seed of the
// random schedule (logged, so that a failure can be replayed).
const (
	crashIterationsEnv = "SLOGATE_CRASH_ITERATIONS"
	crashSeedEnv       = "SLOGATE_CRASH_SEED"
)

// defaultCrashIterations keeps `make test` well under a minute for this
// test; the soak build runs many more (crash_soak_test.go).
const defaultCrashIterations = 4

// TestKill9Random kills a real `slogate serve` with SIGKILL at random moments
// while runs are started, finished, aborted and read, and while definition
// files are rewritten and reloaded (POST /-/reload, SIGHUP and the file
// watcher), then restarts it on the same storage.path. After every restart:
// the bbolt file passes bbolt's consistency check; every run the API
// acknowledged is there, in a state no earlier than the last one
// acknowledged, with every timeline entry acknowledged before the kill, in
// order; the definitions in force are the last valid set written; and the
// gate never answered open while a run of its experiment was active.
//
// It runs on both stores: on PostgreSQL the restarted process is a new
// replica that takes the supervision lease over from the killed one.
func TestKill9Random(t *testing.T) {
	n := envInt(t, crashIterationsEnv, defaultCrashIterations)
	t.Run("bbolt", func(t *testing.T) { runKill9(t, n, "") })
	t.Run("postgres", func(t *testing.T) { runKill9(t, n, testenv.StartPostgres(t).NewDatabase(t)) })
}

// crashSets are the definition sets the test writes: two valid ones (the
// second adds an SLO and an experiment) and one with an error.
var crashSets = map[string]string{
	"base": definitions,
	"wide": definitionsWide,
	"bad":  strings.Replace(definitions, "objective: 99", "objectiv: 99", 1),
}

// crashSLOs are the SLO names each valid set defines, as the API lists them.
var crashSLOs = map[string][]string{
	"base": {"shop-availability"},
	"wide": {"shop-availability", "shop-availability-strict"},
}

// ackedRun is what the API acknowledged about one run: the furthest state
// any 2xx answer showed and the longest timeline it served.
type ackedRun struct {
	id, experiment string
	state          api.RunState
	timeline       []json.RawMessage
}

// crashRun is the JSON of a run as the API serves it; the timeline entries
// are kept raw so that they are compared byte for byte.
type crashRun struct {
	ID         string            `json:"id"`
	Experiment string            `json:"experiment"`
	State      api.RunState      `json:"state"`
	Timeline   []json.RawMessage `json:"timeline"`
}

// crashFigures are counted over all iterations for RELIABILITY.md.
type crashFigures struct {
	kills, killsDuringReload, runs, entries, stateChanges, reloads, requests, gateChecks, lost int
	// unacknowledged counts runs found active whose start was never answered.
	unacknowledged int
}

// crashDriver drives one server through random operations between kills.
type crashDriver struct {
	t       *testing.T
	srv     *server
	rng     *rand.Rand
	defs    string // the definitions file
	written string // the set last written to it
	good    string // the last valid set written
	runs    map[string]*ackedRun
	order   []string // run IDs in start order
	fig     *crashFigures
	// storageURL is the PostgreSQL database, empty for bbolt.
	storageURL string
}

// runKill9 runs the schedule on bbolt, or on PostgreSQL when storageURL
// is set.
func runKill9(t *testing.T, iterations int, storageURL string) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, v, err)
		}
	}
	t.Logf("kill -9 schedule: seed %d (replay with %s=%d), %d iterations", seed, crashSeedEnv, seed, iterations)

	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), storageURL: storageURL})
	d := &crashDriver{
		t: t, srv: srv, storageURL: storageURL, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		defs: srv.DefinitionsPath(), written: "base", good: "base",
		runs: map[string]*ackedRun{}, fig: &crashFigures{},
	}

	for i := range iterations {
		d.waitGateOpen()
		// Both kinds of kill in every run, even a short one.
		duringReload := i%2 == 1
		d.operateAndKill(duringReload)
		d.fig.kills++
		if duringReload {
			d.fig.killsDuringReload++
		}
		d.checkStore()
		d.restart()
		d.checkAfterRestart()
		if t.Failed() {
			t.Fatalf("iteration %d failed (seed %d)", i, seed)
		}
	}
	f := d.fig
	kind := "kill9"
	if storageURL != "" {
		kind = "kill9-postgres"
	}
	t.Logf("RELIABILITY kind=%s iterations=%d during_reload=%d runs=%d timeline_entries=%d state_changes=%d reloads=%d requests=%d gate_checks=%d lost=%d unacknowledged_starts=%d seed=%d", kind,
		f.kills, f.killsDuringReload, f.runs, f.entries, f.stateChanges, f.reloads, f.requests, f.gateChecks, f.lost, f.unacknowledged, seed)
	if f.runs == 0 || f.entries == 0 {
		t.Errorf("nothing was at stake: %d runs and %d timeline entries acknowledged before the kills", f.runs, f.entries)
	}
}

// operateAndKill makes random requests until the server is killed: either
// at a random moment, or just after a reload was asked for.
func (d *crashDriver) operateAndKill(duringReload bool) {
	killed := make(chan struct{})
	var steps int
	if duringReload {
		steps = 10 + d.rng.IntN(60)
	} else {
		delay := time.Duration(300+d.rng.IntN(3000)) * time.Millisecond
		go func() {
			// Not a wait for anything: the kill lands at a random moment
			// of the requests, which is what the test exercises.
			time.Sleep(delay)
			d.srv.Kill()
			close(killed)
		}()
		steps = -1
	}
	for i := 0; ; i++ {
		select {
		case <-killed:
			return
		default:
		}
		if duringReload && i == steps {
			// The kill lands while the reload is read, validated or
			// swapped in, or just after.
			lag := time.Duration(d.rng.IntN(40)) * time.Millisecond
			go func() {
				// Deliberate pacing, as above: a random point of the
				// reload.
				time.Sleep(lag)
				d.srv.Kill()
				close(killed)
			}()
			d.reload()
			<-killed
			return
		}
		d.step()
	}
}

// step is one random operation.
func (d *crashDriver) step() {
	switch n := d.rng.IntN(100); {
	case n < 20:
		d.start()
	case n < 30:
		d.end("finish")
	case n < 38:
		d.end("abort")
	case n < 65:
		d.read()
	case n < 85:
		d.gate()
	default:
		d.reload()
	}
}

// try sends a request without failing the test: the server may die under
// it at any moment. It returns status 0 when there was no answer.
func (d *crashDriver) try(method, path string, body string) (int, []byte) {
	d.fig.requests++
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	code, b, err := d.srv.Try(method, path, r, method == http.MethodPost)
	if err != nil {
		return 0, nil // no answer, or cut off by the kill: not an answer
	}
	return code, b
}

func (d *crashDriver) experiments() []string {
	if d.written == "wide" || d.good == "wide" {
		return []string{"break-shop", "break-shop-too"}
	}
	return []string{"break-shop"}
}

func (d *crashDriver) start() {
	exps := d.experiments()
	exp := exps[d.rng.IntN(len(exps))]
	code, b := d.try(http.MethodPost, "/api/v1/experiments/"+exp+"/runs", "")
	if code != http.StatusCreated {
		return
	}
	var r crashRun
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		d.t.Fatalf("run start answered 201 with %q: %v", b, err)
	}
	d.runs[r.ID] = &ackedRun{id: r.ID, experiment: exp}
	d.order = append(d.order, r.ID)
	d.fig.runs++
	d.ack(r)
}

// end finishes or aborts one of the runs believed active.
func (d *crashDriver) end(how string) {
	var active []string
	for _, id := range d.order {
		if !d.runs[id].state.Terminal() {
			active = append(active, id)
		}
	}
	if len(active) == 0 {
		return
	}
	id := active[d.rng.IntN(len(active))]
	code, b := d.try(http.MethodPost, "/api/v1/runs/"+id+"/"+how, `{"reason": "kill -9 test"}`)
	if code != http.StatusOK {
		return
	}
	var r crashRun
	if err := json.Unmarshal(b, &r); err != nil {
		d.t.Fatalf("%s answered 200 with %q: %v", how, b, err)
	}
	d.ack(r)
}

func (d *crashDriver) read() {
	if len(d.order) == 0 {
		return
	}
	// The newest runs are the ones whose timelines grow.
	id := d.order[len(d.order)-1-d.rng.IntN(min(len(d.order), 3))]
	if r, ok := d.get(id); ok {
		d.ack(r)
	}
}

func (d *crashDriver) get(id string) (crashRun, bool) {
	code, b := d.try(http.MethodGet, "/api/v1/runs/"+id, "")
	if code != http.StatusOK {
		return crashRun{}, false
	}
	var r crashRun
	if err := json.Unmarshal(b, &r); err != nil {
		d.t.Fatalf("GET run answered 200 with %q: %v", b, err)
	}
	return r, true
}

// ack records what a 2xx answer showed about a run.
func (d *crashDriver) ack(r crashRun) {
	a := d.runs[r.ID]
	if a == nil {
		d.t.Fatalf("the API answered about run %s, which the test never started", r.ID)
	}
	if r.State != a.state {
		if a.state != "" && !reachable(a.state, r.State) {
			d.t.Errorf("run %s went from %s to %s", r.ID, a.state, r.State)
		}
		if a.state != "" {
			d.fig.stateChanges++
		}
		a.state = r.State
	}
	if len(r.Timeline) > len(a.timeline) {
		d.fig.entries += len(r.Timeline) - len(a.timeline)
		a.timeline = r.Timeline
	}
}

// reachable tells whether a run seen in state from may later be seen in
// state to.
func reachable(from, to api.RunState) bool {
	if from.CanBecome(to) {
		return true
	}
	return from == api.StateRunning && api.StateRecovering.CanBecome(to)
}

// gate asks the gate of an experiment; an open gate while a run the API
// acknowledged is still active (read after the gate's answer: a run never
// becomes active again) is the one answer that must never happen.
func (d *crashDriver) gate() {
	exps := d.experiments()
	exp := exps[d.rng.IntN(len(exps))]
	var before []string
	for _, id := range d.order {
		if d.runs[id].experiment == exp {
			before = append(before, id)
		}
	}
	code, _ := d.try(http.MethodGet, "/api/v1/experiments/"+exp+"/gate", "")
	if code == 0 {
		return
	}
	d.fig.gateChecks++
	if code != http.StatusOK {
		return
	}
	for _, id := range before {
		if r, ok := d.get(id); ok && !r.State.Terminal() {
			d.t.Errorf("the gate of %s answered open while run %s was %s", exp, id, r.State)
		}
	}
}

// reload rewrites the definitions file with a random set and asks for a
// reload by POST /-/reload or SIGHUP (the file watcher reloads as well).
func (d *crashDriver) reload() {
	d.fig.reloads++
	set := "base"
	switch n := d.rng.IntN(10); {
	case n == 0:
		set = "bad"
	case n < 5:
		set = "wide"
	}
	writeAtomically(d.t, d.defs, crashSets[set])
	d.written = set
	if set != "bad" {
		d.good = set
	}
	if d.rng.IntN(2) == 0 {
		_ = d.srv.Signal(syscall.SIGHUP)
		return
	}
	code, b := d.try(http.MethodPost, "/-/reload", "")
	switch {
	case code == 0:
	case set == "bad" && code != http.StatusUnprocessableEntity:
		d.t.Errorf("reload of a set with an error: %d %s, want 422", code, b)
	case set != "bad" && code != http.StatusOK:
		d.t.Errorf("reload of set %s: %d %s, want 200", set, code, b)
	}
}

// checkStore opens the database the killed process left and runs bbolt's
// consistency check on it.
func (d *crashDriver) checkStore() {
	d.t.Helper()
	if d.storageURL != "" {
		d.checkPostgres()
		return
	}
	path := filepath.Join(d.srv.StoragePath(), store.FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		d.t.Fatalf("open the store after kill -9: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		d.t.Errorf("store inconsistent after kill -9: %v", err)
	}
}

// checkPostgres opens the database as a new replica would (migrations
// included) and reads every run back: a kill -9 of a client never leaves
// PostgreSQL unreadable, and the rest is checked through the API.
func (d *crashDriver) checkPostgres() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, pgstore.Options{URL: d.storageURL})
	if err != nil {
		d.t.Fatalf("open the database after kill -9: %v", err)
	}
	defer s.Close()
	runs, err := s.ListRuns(store.ListFilter{})
	if err != nil {
		d.t.Fatalf("read the runs after kill -9: %v", err)
	}
	active := map[string]int{}
	for _, r := range runs {
		if !r.State.Terminal() {
			active[r.Experiment]++
		}
	}
	for exp, n := range active {
		if n > 1 {
			d.t.Errorf("%d active runs of %s in the database after kill -9", n, exp)
		}
	}
}

// restart starts the server again on the same storage. A definitions file
// left with an error stops it at start (exit 1, nothing served); it is then
// put back to the last valid set, as an operator would.
func (d *crashDriver) restart() {
	d.t.Helper()
	if d.written == "bad" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := d.srv.Command(ctx).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "definitions.yaml:6:3") {
			d.t.Errorf("serve with a definitions file with an error: %v, want exit status 1 naming definitions.yaml:6:3\n%s", err, out)
		}
		writeAtomically(d.t, d.defs, crashSets[d.good])
		d.written = d.good
	}
	d.srv.Start()
}

// checkAfterRestart compares what the restarted server serves with what the
// API acknowledged before the kill.
func (d *crashDriver) checkAfterRestart() {
	d.t.Helper()
	// The gate first: a run stored as active must close it from the start.
	for _, exp := range d.experiments() {
		code, _ := d.try(http.MethodGet, "/api/v1/experiments/"+exp+"/gate", "")
		if code != http.StatusOK {
			continue
		}
		for _, id := range d.order {
			if a := d.runs[id]; a.experiment == exp {
				if r, ok := d.get(id); ok && !r.State.Terminal() {
					d.t.Errorf("after restart the gate of %s answered open while run %s was %s", exp, id, r.State)
				}
			}
		}
	}

	for _, id := range d.order {
		a := d.runs[id]
		r, ok := d.get(id)
		if !ok {
			d.fig.lost++
			d.t.Errorf("run %s (acknowledged %s) is gone after kill -9", id, a.state)
			continue
		}
		if r.State != a.state && !reachable(a.state, r.State) {
			d.fig.lost++
			d.t.Errorf("run %s: acknowledged %s before kill -9, %s after", id, a.state, r.State)
		}
		if len(r.Timeline) < len(a.timeline) {
			d.fig.lost += len(a.timeline) - len(r.Timeline)
			d.t.Errorf("run %s: %d timeline entries acknowledged before kill -9, %d after", id, len(a.timeline), len(r.Timeline))
			continue
		}
		for i, e := range a.timeline {
			if string(e) != string(r.Timeline[i]) {
				d.fig.lost++
				d.t.Errorf("run %s: timeline entry %d was %s before kill -9, %s after", id, i, e, r.Timeline[i])
			}
		}
		d.ack(r)
	}

	var list struct{ Runs []crashRun }
	code, b := d.try(http.MethodGet, "/api/v1/runs?limit=100000", "")
	if code != http.StatusOK || json.Unmarshal(b, &list) != nil {
		d.t.Fatalf("GET /api/v1/runs after restart: %d %s", code, b)
	}
	listed := map[string]bool{}
	for _, r := range list.Runs {
		listed[r.ID] = true
	}
	for _, id := range d.order {
		if !listed[id] {
			d.t.Errorf("run %s is missing from the run list after kill -9", id)
		}
	}

	if got, want := d.srv.sloNames(), crashSLOs[d.good]; !slices.Equal(got, want) {
		d.t.Errorf("SLOs after restart: %v, want those of the last valid set written (%s): %v", got, d.good, want)
	}
}

// waitGateOpen ends the runs left active by the previous iteration and
// waits until a run can be started. Among them may be a run whose start the
// server committed but whose answer the kill cut off: it was never
// acknowledged, so the test neither counts nor checks it, but it is active
// all the same and keeps the gate closed.
func (d *crashDriver) waitGateOpen() {
	d.t.Helper()
	for _, id := range d.order {
		if !d.runs[id].state.Terminal() {
			d.end1(id)
		}
	}
	var active struct{ Runs []crashRun }
	if code, b := d.try(http.MethodGet, "/api/v1/runs?active=true&limit=100000", ""); code == http.StatusOK && json.Unmarshal(b, &active) == nil {
		for _, r := range active.Runs {
			if _, acked := d.runs[r.ID]; !acked {
				d.fig.unacknowledged++
				d.try(http.MethodPost, "/api/v1/runs/"+r.ID+"/abort", `{"reason": "started, answer lost in the kill"}`)
			}
		}
	}
	d.srv.Eventually(60*time.Second, "the gate to open", func() error {
		if code, b := d.try(http.MethodGet, "/api/v1/experiments/break-shop/gate", ""); code != http.StatusOK {
			return fmt.Errorf("the gate answers %d %s", code, b)
		}
		return nil
	})
}

func (d *crashDriver) end1(id string) {
	if code, b := d.try(http.MethodPost, "/api/v1/runs/"+id+"/abort", `{"reason": "next iteration"}`); code == http.StatusOK {
		var r crashRun
		if err := json.Unmarshal(b, &r); err == nil {
			d.ack(r)
		}
	} else if r, ok := d.get(id); ok {
		d.ack(r) // ended by the server meanwhile
	}
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
