package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SlogateBinary builds cmd/slogate once per test process, as users run it,
// and returns its path.
func SlogateBinary(t testing.TB) string {
	t.Helper()
	return GoBinary(t, "./cmd/slogate")
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

// GoBinary builds the main package pkg of this module (a path from the
// repository root, like "./bench/loadgen") once per test process and
// returns the binary's path. The binary lives in a temporary directory that
// is left for the OS to clean: tests of one package share it.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	buildsMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "slogate-test-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// SlogateOptions configures StartSlogate. The files it writes (definitions,
// token, config, web config) are in the server's own directory (Dir), where
// a test may rewrite them and ask for a reload.
type SlogateOptions struct {
	// Demo runs `slogate demo` (embedded TSDB, simulated shop, its own
	// definitions) instead of `slogate serve`. Only the listen address,
	// storage path, log format, Interval, AlertmanagerURLs and Args apply.
	Demo bool

	// PrometheusURL is --prometheus.url.
	PrometheusURL string
	// AlertmanagerURLs are --alertmanager.urls; none: no Alertmanager.
	AlertmanagerURLs []string
	// Definitions, when not empty, is YAML written to DefinitionsPath and
	// passed as --definitions.
	Definitions string
	// DefinitionPaths are more --definitions values: files, directories,
	// globs.
	DefinitionPaths []string
	// Config, when not empty, is YAML written to ConfigPath and passed as
	// --config.
	Config string
	// Token, when not empty, is the API token: written to TokenPath and
	// passed as --web.api-token-file. Do sends it when asked to.
	Token string
	// WebConfig, when not empty, is an exporter-toolkit web config written
	// to Dir/web.yml and passed as --web.config-file.
	WebConfig string
	// TLS, when not nil, is the client side of a WebConfig that serves
	// TLS: the URL is https and the test's requests (readiness, Do,
	// Metrics) use it, e.g. with the test CA in RootCAs.
	TLS *tls.Config
	// BasicAuthUser and BasicAuthPassword, when set, go with every request
	// of the test's client, for a WebConfig with basic_auth_users.
	BasicAuthUser, BasicAuthPassword string

	// Interval is --evaluation.interval; default 1s for serve, so that
	// tests see evaluations quickly, and the demo's own for demo.
	Interval time.Duration
	// MinRange is --evaluation.min-range; zero leaves slogate's default.
	MinRange time.Duration
	// StoragePath is --storage.path; default Dir/data.
	StoragePath string
	// Port is the loopback port to listen on, for a test that must know it
	// before the start (a Prometheus that scrapes slogate). Zero: a free
	// port, and another one if it turns out to be taken at the start.
	Port int
	// Args are more flags, after StartSlogate's own: a flag given twice
	// takes its last value, so Args can override any of them.
	Args []string
	// Env is more environment, KEY=value, after the test process's own.
	Env []string

	// NoWait makes StartSlogate, Start and Restart return once the process
	// is started, for a test that measures the start-up or waits for
	// something else; by default they wait until /ping answers 200
	// (definitions loaded, first evaluation done).
	NoWait bool
	// ReadyTimeout bounds that wait; default 60s.
	ReadyTimeout time.Duration
	// StopTimeout is how long the service gets to shut down after SIGTERM
	// (Stop, Restart, the end of the test) before the test fails and the
	// process is killed; default 20s.
	StopTimeout time.Duration
}

// Slogate is a `slogate serve` (or `slogate demo`) child process of the
// test. It can be stopped, killed and started again with the same command
// line, so on the same port and storage.
type Slogate struct {
	t      testing.TB
	opts   SlogateOptions
	dir    string
	url    string
	proc   *process
	client *http.Client
}

// The file names StartSlogate writes in Dir.
const (
	slogateDefinitionsFile = "definitions.yaml"
	slogateTokenFile       = "token"
	slogateConfigFile      = "slogate.yml"
	slogateWebConfigFile   = "web.yml"
	slogateLogFile         = "slogate.log"
)

// StartSlogate starts slogate with opts and, unless opts.NoWait, waits
// until it is ready. It is stopped with SIGTERM when the test ends (the
// test fails if it does not stop in time), and the end of its log is
// printed if the test failed.
func StartSlogate(t testing.TB, opts SlogateOptions) *Slogate {
	t.Helper()
	s := NewSlogate(t, opts)
	s.Start()
	return s
}

// NewSlogate prepares what StartSlogate starts, files and command line,
// without starting it: for a test that first runs the same command line
// itself (Command) or changes a file before the first start.
func NewSlogate(t testing.TB, opts SlogateOptions) *Slogate {
	t.Helper()
	if opts.Interval <= 0 && !opts.Demo {
		opts.Interval = time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = readyTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 20 * time.Second
	}
	s := &Slogate{t: t, opts: opts, dir: t.TempDir()}
	if s.opts.StoragePath == "" {
		s.opts.StoragePath = filepath.Join(s.dir, "data")
	}
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), mode); err != nil {
			t.Fatalf("testenv: slogate: %v", err)
		}
	}
	if opts.Definitions != "" {
		write(slogateDefinitionsFile, opts.Definitions, 0o644)
	}
	if opts.Token != "" {
		write(slogateTokenFile, opts.Token+"\n", 0o600)
	}
	if opts.Config != "" {
		write(slogateConfigFile, opts.Config, 0o600)
	}
	if opts.WebConfig != "" {
		write(slogateWebConfigFile, opts.WebConfig, 0o600)
	}
	transport := &http.Transport{DisableKeepAlives: true, TLSClientConfig: opts.TLS}
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: transport}
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	s.proc = &process{
		name:    "slogate",
		bin:     SlogateBinary(t),
		env:     opts.Env,
		logPath: filepath.Join(s.dir, slogateLogFile),
		ready:   s.ping,
	}
	s.listenOn(port)
	t.Cleanup(func() {
		if !s.proc.stopWithin(s.opts.StopTimeout) {
			t.Errorf("testenv: slogate did not stop within %s of SIGTERM; killed", s.opts.StopTimeout)
		}
		if t.Failed() {
			t.Logf("testenv: last lines of slogate's log %s:\n%s", s.proc.logPath, s.proc.logTail(60))
		}
	})
	return s
}

// listenOn sets the port, and with it the URL and the command line.
func (s *Slogate) listenOn(port int) {
	s.proc.addr = loopbackAddr(port)
	scheme := "http"
	if s.opts.TLS != nil {
		scheme = "https"
	}
	s.url = scheme + "://" + s.proc.addr
	s.proc.args = s.args()
}

func (s *Slogate) args() []string {
	o := s.opts
	cmd := "serve"
	if o.Demo {
		cmd = "demo"
	}
	args := []string{cmd,
		"--web.listen-address=" + s.proc.addr,
		"--storage.path=" + o.StoragePath,
		"--log.format=json",
	}
	if o.Interval > 0 {
		args = append(args, "--evaluation.interval="+o.Interval.String())
	}
	if len(o.AlertmanagerURLs) > 0 {
		args = append(args, "--alertmanager.urls="+strings.Join(o.AlertmanagerURLs, ","))
	}
	if !o.Demo {
		if o.PrometheusURL != "" {
			args = append(args, "--prometheus.url="+o.PrometheusURL)
		}
		if o.Definitions != "" {
			args = append(args, "--definitions="+s.DefinitionsPath())
		}
		for _, p := range o.DefinitionPaths {
			args = append(args, "--definitions="+p)
		}
		if o.MinRange > 0 {
			args = append(args, "--evaluation.min-range="+o.MinRange.String())
		}
		if o.Token != "" {
			args = append(args, "--web.api-token-file="+s.TokenPath())
		}
		if o.Config != "" {
			args = append(args, "--config="+s.ConfigPath())
		}
		if o.WebConfig != "" {
			args = append(args, "--web.config-file="+filepath.Join(s.dir, slogateWebConfigFile))
		}
	}
	return append(args, o.Args...)
}

// Start starts the process (again, after Stop or Kill) with the same
// command line and, unless NoWait, waits until it is ready. On the first
// start, a free port that someone else took in the meantime is replaced by
// another one.
func (s *Slogate) Start() {
	s.t.Helper()
	first := s.proc.current() == nil
	for attempt := 1; ; attempt++ {
		if err := s.proc.start(); err != nil {
			s.t.Fatalf("testenv: %v", err)
		}
		if s.opts.NoWait {
			return
		}
		err := s.proc.waitReady(s.client, s.opts.ReadyTimeout)
		if err == nil {
			return
		}
		s.proc.stop()
		if first && s.opts.Port == 0 && attempt < startAttempts && s.proc.addrInUse() {
			s.t.Logf("testenv: slogate: port of %s was taken, trying another one", s.proc.addr)
			s.listenOn(FreePort(s.t))
			continue
		}
		s.t.Fatalf("testenv: %v\nlast lines of %s:\n%s", err, s.proc.logPath, s.proc.logTail(logTailLines))
	}
}

// WaitReady waits until /ping answers 200, failing the test if the process
// exits first or ReadyTimeout passes: after a start with NoWait.
func (s *Slogate) WaitReady() {
	s.t.Helper()
	if err := s.proc.waitReady(s.client, s.opts.ReadyTimeout); err != nil {
		s.t.Fatalf("testenv: %v\nlast lines of %s:\n%s", err, s.proc.logPath, s.proc.logTail(logTailLines))
	}
}

func (s *Slogate) ping() error {
	status, body, err := s.Try(http.MethodGet, "/ping", nil, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("/ping: status %d: %s", status, bytes.TrimSpace(body))
	}
	return nil
}

// Stop sends SIGTERM and waits for the exit; the test fails if the service
// takes longer than StopTimeout (it is then killed). Stopping a stopped
// server does nothing.
func (s *Slogate) Stop() {
	s.t.Helper()
	if !s.proc.stopWithin(s.opts.StopTimeout) {
		s.t.Errorf("testenv: slogate did not stop within %s of SIGTERM; killed", s.opts.StopTimeout)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and reaps it.
func (s *Slogate) Kill() { s.proc.kill() }

// Restart is Stop then Start: same command line, port and storage.
func (s *Slogate) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Signal sends sig to the running process (SIGHUP: reload).
func (s *Slogate) Signal(sig os.Signal) error { return s.proc.signal(sig) }

// Exited tells whether the process has ended (or was never started).
func (s *Slogate) Exited() bool {
	r := s.proc.current()
	return r == nil || r.exited()
}

// Pid is the process id of the current (or last) life.
func (s *Slogate) Pid() int {
	r := s.proc.current()
	if r == nil {
		s.t.Fatal("testenv: slogate was never started")
		return 0
	}
	return r.cmd.Process.Pid
}

// StartedAt is when the current (or last) life was started.
func (s *Slogate) StartedAt() time.Time {
	r := s.proc.current()
	if r == nil {
		return time.Time{}
	}
	return r.started
}

// URL is the base URL, e.g. http://127.0.0.1:41234 (https with TLS).
func (s *Slogate) URL() string { return s.url }

// Addr is the host:port it listens on.
func (s *Slogate) Addr() string { return s.proc.addr }

// Dir is the server's own directory: definitions, token, config, log and,
// by default, the storage.
func (s *Slogate) Dir() string { return s.dir }

// DefinitionsPath is the file Definitions was written to.
func (s *Slogate) DefinitionsPath() string { return filepath.Join(s.dir, slogateDefinitionsFile) }

// TokenPath is the file Token was written to.
func (s *Slogate) TokenPath() string { return filepath.Join(s.dir, slogateTokenFile) }

// ConfigPath is the file Config was written to.
func (s *Slogate) ConfigPath() string { return filepath.Join(s.dir, slogateConfigFile) }

// StoragePath is --storage.path.
func (s *Slogate) StoragePath() string { return s.opts.StoragePath }

// Token is the API token (empty: none).
func (s *Slogate) Token() string { return s.opts.Token }

// LogPath is the file that holds the output of every life of the process.
func (s *Slogate) LogPath() string { return s.proc.logPath }

// Args is the command line after the binary's name, for a test that runs
// the same command itself (e.g. to see it refuse to start).
func (s *Slogate) Args() []string { return append([]string(nil), s.proc.args...) }

// Command is the same command line as an *exec.Cmd bound to ctx, not
// started, with the options' environment.
func (s *Slogate) Command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.proc.bin, s.proc.args...)
	if len(s.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), s.opts.Env...)
	}
	return cmd
}

// Client is the test's HTTP client for the server: TLS and basic auth as
// the options say, no keep-alive (no idle connection outlives the test).
func (s *Slogate) Client() *http.Client { return s.client }

// Try sends a request to path (with the API token as a bearer token if
// token is set) and returns the status and body. It does not fail the
// test: an error is no answer (the server is down, being killed, ...).
func (s *Slogate) Try(method, path string, body io.Reader, token bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		return 0, nil, err
	}
	if s.opts.BasicAuthUser != "" {
		req.SetBasicAuth(s.opts.BasicAuthUser, s.opts.BasicAuthPassword)
	}
	if token {
		if s.opts.BasicAuthUser != "" {
			req.Header.Set("X-Slogate-Token", s.opts.Token) // Authorization carries basic auth
		} else {
			req.Header.Set("Authorization", "Bearer "+s.opts.Token)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// Do is Try for answers the test needs: no answer fails the test, and a
// JSON body is decoded into out (unless out is nil). It returns the status.
func (s *Slogate) Do(method, path string, body io.Reader, token bool, out any) int {
	s.t.Helper()
	status, b, err := s.Try(method, path, body, token)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: status %d, body %.300q: %v", method, path, status, b, err)
		}
	}
	return status
}

// Metrics reads /metrics: series as written (`name` or `name{a="b"}`) to
// value, only the lines that start with one of prefixes (every sample when
// there is none). Per-SLO series of thousands of SLOs are many lines:
// benchmarks ask only for what they read.
func (s *Slogate) Metrics(prefixes ...string) (map[string]float64, error) {
	status, b, err := s.Try(http.MethodGet, "/metrics", nil, false)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("/metrics: status %d", status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if len(prefixes) > 0 && !hasAnyPrefix(line, prefixes) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// MetricSum adds the values of every series of the metric name on
// /metrics; n is how many there are (0: the metric is not exported).
func (s *Slogate) MetricSum(name string) (sum float64, n int, err error) {
	m, err := s.Metrics(name+" ", name+"{")
	if err != nil {
		return 0, 0, err
	}
	for _, v := range m {
		sum += v
	}
	return sum, len(m), nil
}

// Evaluations is how many evaluation cycles have ended
// (slogate_evaluation_duration_seconds_count), what tests wait on when
// they need "a few more evaluations".
func (s *Slogate) Evaluations() (float64, error) {
	m, err := s.Metrics("slogate_evaluation_duration_seconds_count")
	if err != nil {
		return 0, err
	}
	v, ok := m["slogate_evaluation_duration_seconds_count"]
	if !ok {
		return 0, fmt.Errorf("/metrics has no slogate_evaluation_duration_seconds_count")
	}
	return v, nil
}

// WaitEvaluations waits until n more evaluation cycles have ended than
// when it was called.
func (s *Slogate) WaitEvaluations(n int, timeout time.Duration) {
	s.t.Helper()
	var from float64
	s.Eventually(timeout, "slogate's evaluation count to be read", func() error {
		var err error
		from, err = s.Evaluations()
		return err
	})
	s.Eventually(timeout, fmt.Sprintf("%d more evaluations", n), func() error {
		v, err := s.Evaluations()
		if err != nil {
			return err
		}
		if v < from+float64(n) {
			return fmt.Errorf("%v evaluations, want %v", v, from+float64(n))
		}
		return nil
	})
}

// Eventually is testenv.Eventually that gives up at once, with the end of
// the log, when the process has exited.
func (s *Slogate) Eventually(timeout time.Duration, what string, cond func() error) {
	s.t.Helper()
	err := Poll(timeout, func() error {
		if s.Exited() {
			return Permanent(fmt.Errorf("slogate exited; last lines of %s:\n%s", s.proc.logPath, s.proc.logTail(logTailLines)))
		}
		return cond()
	})
	if err != nil {
		s.t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}
