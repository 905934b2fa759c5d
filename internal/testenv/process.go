package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds the wait for /-/ready. Prometheus replaying a big
	// WAL or loading many backfilled blocks on a busy 2-core machine is the
	// slow case.
	readyTimeout = 60 * time.Second
	// stopGrace is how long a child gets to shut down after SIGTERM.
	stopGrace = 10 * time.Second
	// logTailLines is how much of a child's log a failure shows.
	logTailLines = 40
	// startAttempts bounds the retries when the free port was taken by
	// someone else between FreePort and the child's bind.
	startAttempts = 3
)

// process is one child server: its command line, its log file, and the run
// currently going on, if any. A process can be started again after it
// stopped (Restart), with the same arguments and log file.
type process struct {
	name    string // for messages: "prometheus", "alertmanager"
	bin     string
	args    []string
	logPath string
	env     []string // added to the test process's environment
	addr    string   // host:port it serves HTTP on
	// readyPath answers 200 once the child is ready; default /-/ready.
	readyPath string
	// ready, when set, replaces the GET of readyPath: nil once the child is
	// ready (a server behind TLS or basic auth needs its own client).
	ready func() error

	mu  sync.Mutex
	run *run // nil before the first start
}

// run is one life of the child process.
type run struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has exited and been reaped
	err     error         // exit status; read only after done is closed
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// start launches the child and returns without waiting for it to be ready.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && !p.run.exited() {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.run.cmd.Process.Pid)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	// The child writes to its own copy of the descriptor, so no goroutine
	// copies output and ours can be closed right after the start.
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== testenv: starting %s %s\n", p.bin, redactUserinfo(strings.Join(p.args, " ")))

	cmd := exec.Command(p.bin, p.args...)
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	r := &run{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.run = r
	return nil
}

func (p *process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// stop sends SIGTERM and, if the child is still there after stopGrace,
// SIGKILL. It returns once the child has been reaped. Stopping a stopped
// process does nothing.
func (p *process) stop() { p.stopWithin(stopGrace) }

// stopWithin is stop with another grace; it reports whether the child
// exited on its own within it (a stopped process did).
func (p *process) stopWithin(grace time.Duration) bool {
	r := p.current()
	if r == nil || r.exited() {
		return true
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-r.done:
		return true
	case <-t.C:
		killGroup(r.cmd.Process)
		<-r.done
		return false
	}
}

// signal sends sig to the running child.
func (p *process) signal(sig os.Signal) error {
	r := p.current()
	if r == nil || r.exited() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return r.cmd.Process.Signal(sig)
}

// kill ends the child with SIGKILL, as a crash would, and reaps it.
func (p *process) kill() {
	r := p.current()
	if r == nil || r.exited() {
		return
	}
	killGroup(r.cmd.Process)
	<-r.done
}

// waitReady waits until the child is ready (p.ready, or a 200 from
// http://addr/readyPath), it exits or the timeout passes.
func (p *process) waitReady(client *http.Client, timeout time.Duration) error {
	r := p.current()
	ready := p.ready
	if ready == nil {
		path := p.readyPath
		if path == "" {
			path = "/-/ready"
		}
		url := "http://" + p.addr + path
		ready = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			status, err := getStatus(ctx, client, url)
			if err != nil {
				return fmt.Errorf("last answer from %s: %w", url, err)
			}
			if status != http.StatusOK {
				return fmt.Errorf("last answer from %s: status %d", url, status)
			}
			return nil
		}
	}
	err := Poll(timeout, func() error {
		if r.exited() {
			return Permanent(fmt.Errorf("%s exited before it was ready: %v", p.name, r.err))
		}
		return ready()
	})
	if err != nil && !r.exited() {
		return fmt.Errorf("%s not ready after %s: %w", p.name, timeout, err)
	}
	return err
}

func getStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// redactUserinfo hides the passwords of URLs (scheme://user:password@host)
// in a command line written to the log: tests scan logs for leaked secrets.
func redactUserinfo(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}:xxxxx@")
}

var userinfoRE = regexp.MustCompile(`(://[^/:@\s,]*):[^/@\s,]*@`)

// addrInUse tells whether the last start failed because the port was taken.
func (p *process) addrInUse() bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && bytes.Contains(b, []byte("address already in use"))
}

// logTail returns the last n lines of the child's log.
func (p *process) logTail(n int) string {
	b, err := readTail(p.logPath, 64<<10)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if off := fi.Size() - max; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

// launch starts a child server and waits for it to be ready, then registers
// its stop in t.Cleanup. newProcess builds the process for a port; when the
// port turns out to be taken, launch tries again with another one.
func launch(t testing.TB, newProcess func(port int) (*process, error)) *process {
	t.Helper()
	client := newHTTPClient()
	var p *process
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		p, err = newProcess(port)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := p.start(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		err = p.waitReady(client, readyTimeout)
		if err == nil {
			break
		}
		p.stop()
		if attempt < startAttempts && p.addrInUse() {
			t.Logf("testenv: %s: port %d was taken, trying another one", p.name, port)
			continue
		}
		t.Fatalf("testenv: %v\nlast lines of %s:\n%s", err, p.logPath, p.logTail(logTailLines))
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("testenv: last lines of the %s log %s:\n%s", p.name, p.logPath, p.logTail(logTailLines))
		}
	})
	return p
}

// restart starts a stopped (or running) child again with the same
// arguments, so on the same port and data directory.
func (p *process) restart(t testing.TB) {
	t.Helper()
	p.stop()
	if err := p.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := p.waitReady(newHTTPClient(), readyTimeout); err != nil {
		t.Fatalf("testenv: restart: %v\nlast lines of %s:\n%s", err, p.logPath, p.logTail(logTailLines))
	}
}

// newHTTPClient returns a client without keep-alive, so that no idle
// connection goroutine outlives a test (goleak) and a stopped server is
// seen as gone at once.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}, // and no proxy from the environment
	}
}
