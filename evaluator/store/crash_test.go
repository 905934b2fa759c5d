package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/api"
)

// The crash test re-executes the test binary as a writer that is killed
// with SIGKILL mid-stream; these variables tell the child what to do.
const (
	helperDirEnv = "SLOGATE_STORE_CRASH_DIR"
	helperExpEnv = "SLOGATE_STORE_CRASH_EXPERIMENT"
)

// TestHelperProcess is the child of TestCrashSafety, not a test of its own.
// It creates a run, then appends timeline entries (every fifth together
// with a record update) forever, printing "ack N" once entry N is
// acknowledged by the store.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashSafety")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	r := &Run{Experiment: os.Getenv(helperExpEnv), State: api.StateRunning, StartedAt: time.Now()}
	if err := s.CreateRun(r); err != nil {
		fail(err)
	}
	fmt.Printf("run %s\n", r.ID)
	for i := 0; ; i++ {
		e := TimelineEntry{At: time.Now(), Probe: "error-rate", Value: FloatPtr(float64(i)), Verdict: "pass", Message: strconv.Itoa(i)}
		if i%5 == 0 {
			r.BudgetSpent = float64(i)
			err = s.UpdateRun(r, e)
		} else {
			err = s.AppendTimeline(r.ID, e)
		}
		if err != nil {
			fail(err)
		}
		// os.Stdout is unbuffered: the line is in the pipe before the next
		// write starts.
		fmt.Printf("ack %d\n", i)
	}
}

// TestCrashSafety kills a writer at random moments and checks that every
// write it had acknowledged survives, in order, in a consistent database.
// Several rounds share one database, so recovery from a crash is itself
// crashed into.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	for round := range 5 {
		exp := fmt.Sprintf("crash-%d", round)
		target := 1 + rand.IntN(150)
		id, lastAck := crashWriter(t, dir, exp, target)
		t.Logf("round %d: killed after ack %d (target %d)", round, lastAck, target)

		s, err := Open(dir, Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		checkConsistent(t, s)
		r, err := s.GetRun(id)
		if err != nil {
			t.Fatalf("round %d: run %s lost: %v", round, id, err)
		}
		// Every acknowledged entry is there; one more may be, if the kill
		// landed between the commit and the print.
		if len(r.Timeline) < lastAck+1 || len(r.Timeline) > lastAck+2 {
			t.Errorf("round %d: %d timeline entries, acknowledged %d", round, len(r.Timeline), lastAck+1)
		}
		for i, e := range r.Timeline {
			if e.Message != strconv.Itoa(i) || e.Value == nil || *e.Value != float64(i) {
				t.Fatalf("round %d: timeline entry %d is %+v", round, i, e)
			}
		}
		// The record update and the entry of every fifth write were one
		// transaction: the record reflects the last such entry stored.
		if want := float64((len(r.Timeline) - 1) / 5 * 5); r.BudgetSpent != want {
			t.Errorf("round %d: budgetSpent %v with %d entries, want %v", round, r.BudgetSpent, len(r.Timeline), want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashWriter runs TestHelperProcess until it has acknowledged target
// entries, kills it with SIGKILL at a random moment shortly after, and
// returns the run ID and the last acknowledged entry.
func crashWriter(t *testing.T, dir, exp string, target int) (id string, lastAck int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperExpEnv+"="+exp)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lastAck = -1
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "run "):
			id = strings.TrimPrefix(line, "run ")
		case strings.HasPrefix(line, "ack "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "ack "))
			if err != nil {
				t.Fatalf("helper printed %q", line)
			}
			lastAck = n
		}
		if !killed && lastAck >= target {
			// Up to a few ms later: the kill lands anywhere in a write,
			// including inside the commit's fsync.
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
		// Keep reading after the kill: acks already in the pipe count.
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("helper stopped before ack %d (last %d): %v\n%s", target, lastAck, err, stderr.String())
	}
	if id == "" {
		t.Fatalf("helper printed no run ID\n%s", stderr.String())
	}
	return id, lastAck
}
