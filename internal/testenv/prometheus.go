package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// PromOptions configures StartPrometheus. The zero value is a Prometheus
// that scrapes nothing, every second.
type PromOptions struct {
	// ScrapeInterval is the global scrape interval; default 1s. The scrape
	// timeout is the same, capped at 10s.
	ScrapeInterval time.Duration
	// EvaluationInterval is the rule evaluation interval; default
	// ScrapeInterval.
	EvaluationInterval time.Duration
	// Targets are scraped over plain HTTP; targets sharing a job name form
	// one scrape config.
	Targets []ScrapeTarget
	// RuleFiles are rule file paths (globs allowed). Reload re-reads them.
	RuleFiles []string
	// Alertmanagers are host:port addresses that alerting rules notify.
	Alertmanagers []string
	// LookbackDelta sets --query.lookback-delta; zero keeps Prometheus's
	// default (5m).
	LookbackDelta time.Duration
	// DataDir is the TSDB directory. It may already hold blocks, e.g. made
	// by Backfill; default: a new t.TempDir().
	DataDir string
	// ExtraArgs are appended to the command line (feature flags, ...).
	ExtraArgs []string
	// Retention is --storage.tsdb.retention.time; default 60d.
	Retention time.Duration
}

// ScrapeTarget is one host:port that Prometheus scrapes under a job name.
type ScrapeTarget struct {
	Job         string
	Addr        string            // host:port
	MetricsPath string            // default /metrics
	Labels      map[string]string // extra target labels
}

// Prometheus is a running (or stopped) real Prometheus server.
type Prometheus struct {
	proc       *process
	dataDir    string
	configPath string
	client     *http.Client
}

// StartPrometheus starts the pinned Prometheus binary on a free loopback
// port with a configuration generated from opts, and returns once it
// answers /-/ready. It is stopped when the test ends. The storage keeps 60
// days, and the lifecycle and admin APIs are on.
func StartPrometheus(t testing.TB, opts PromOptions) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus")
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	if opts.EvaluationInterval <= 0 {
		opts.EvaluationInterval = opts.ScrapeInterval
	}
	dir := t.TempDir()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	cfg, err := promConfigYAML(opts)
	if err != nil {
		t.Fatalf("testenv: prometheus config: %v", err)
	}
	if err := os.WriteFile(configPath, cfg, 0o644); err != nil {
		t.Fatalf("testenv: prometheus config: %v", err)
	}

	retention := model.Duration(60 * 24 * time.Hour)
	if opts.Retention > 0 {
		retention = model.Duration(opts.Retention)
	}
	proc := launch(t, func(port int) (*process, error) {
		addr := loopbackAddr(port)
		args := []string{
			"--config.file=" + configPath,
			"--storage.tsdb.path=" + dataDir,
			"--storage.tsdb.retention.time=" + retention.String(),
			"--web.listen-address=" + addr,
			"--web.enable-lifecycle",
			"--web.enable-admin-api",
		}
		if opts.LookbackDelta > 0 {
			args = append(args, "--query.lookback-delta="+model.Duration(opts.LookbackDelta).String())
		}
		args = append(args, opts.ExtraArgs...)
		return &process{
			name:    "prometheus",
			bin:     bin,
			args:    args,
			logPath: filepath.Join(dir, "prometheus.log"),
			addr:    addr,
		}, nil
	})
	return &Prometheus{proc: proc, dataDir: dataDir, configPath: configPath, client: newHTTPClient()}
}

// The parts of prometheus.yml that tests use.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string           `yaml:"rule_files,omitempty"`
	Alerting      *promAlerting      `yaml:"alerting,omitempty"`
	ScrapeConfigs []promScrapeConfig `yaml:"scrape_configs"`
}

type promAlerting struct {
	Alertmanagers []struct {
		StaticConfigs []promStaticConfig `yaml:"static_configs"`
	} `yaml:"alertmanagers"`
}

type promScrapeConfig struct {
	JobName       string             `yaml:"job_name"`
	MetricsPath   string             `yaml:"metrics_path,omitempty"`
	StaticConfigs []promStaticConfig `yaml:"static_configs"`
}

type promStaticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels,omitempty"`
}

func promConfigYAML(opts PromOptions) ([]byte, error) {
	var cfg promConfig
	cfg.Global.ScrapeInterval = model.Duration(opts.ScrapeInterval).String()
	cfg.Global.ScrapeTimeout = model.Duration(min(opts.ScrapeInterval, 10*time.Second)).String()
	cfg.Global.EvaluationInterval = model.Duration(opts.EvaluationInterval).String()
	cfg.RuleFiles = opts.RuleFiles
	cfg.ScrapeConfigs = []promScrapeConfig{}
	if len(opts.Alertmanagers) > 0 {
		cfg.Alerting = &promAlerting{}
		cfg.Alerting.Alertmanagers = append(cfg.Alerting.Alertmanagers, struct {
			StaticConfigs []promStaticConfig `yaml:"static_configs"`
		}{StaticConfigs: []promStaticConfig{{Targets: opts.Alertmanagers}}})
	}
	jobs := map[string]int{} // job name → index in ScrapeConfigs
	for _, st := range opts.Targets {
		if st.Job == "" || st.Addr == "" {
			return nil, fmt.Errorf("scrape target %+v: job and addr are required", st)
		}
		path := st.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		i, ok := jobs[st.Job]
		if !ok {
			i = len(cfg.ScrapeConfigs)
			jobs[st.Job] = i
			cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, promScrapeConfig{JobName: st.Job, MetricsPath: path})
		} else if cfg.ScrapeConfigs[i].MetricsPath != path {
			return nil, fmt.Errorf("job %q: targets with different metrics paths", st.Job)
		}
		cfg.ScrapeConfigs[i].StaticConfigs = append(cfg.ScrapeConfigs[i].StaticConfigs,
			promStaticConfig{Targets: []string{st.Addr}, Labels: st.Labels})
	}
	return yaml.Marshal(&cfg)
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (p *Prometheus) URL() string { return "http://" + p.proc.addr }

// Addr is the server's host:port.
func (p *Prometheus) Addr() string { return p.proc.addr }

// DataDir is the TSDB directory.
func (p *Prometheus) DataDir() string { return p.dataDir }

// ConfigPath is the generated prometheus.yml; a test may rewrite it and
// call Reload.
func (p *Prometheus) ConfigPath() string { return p.configPath }

// LogPath is the file that holds the server's output.
func (p *Prometheus) LogPath() string { return p.proc.logPath }

// Stop shuts the server down (SIGTERM, SIGKILL after 10s) and waits for it
// to exit. Stopping a stopped server does nothing.
func (p *Prometheus) Stop() { p.proc.stop() }

// Kill ends the server with SIGKILL, like a crash, and waits for it.
func (p *Prometheus) Kill() { p.proc.kill() }

// Restart stops the server if it runs and starts it again on the same port,
// configuration and data directory, waiting until it is ready.
func (p *Prometheus) Restart(t testing.TB) {
	t.Helper()
	p.proc.restart(t)
}

// Reload makes the server re-read its configuration and rule files
// (POST /-/reload) and fails the test if it refuses them.
func (p *Prometheus) Reload(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/-/reload", nil)
	if err != nil {
		t.Fatalf("testenv: reload: %v", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("testenv: reload: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: reload: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
}

// Sample is one element of an instant query result.
type Sample struct {
	Metric map[string]string
	Value  float64
	Time   time.Time
}

// Query evaluates expr now and returns its only value; it fails the test
// on an error or unless the result is a scalar or exactly one sample.
func (p *Prometheus) Query(t testing.TB, expr string) float64 {
	t.Helper()
	return p.QueryAt(t, expr, time.Time{})
}

// QueryAt is Query evaluated at ts (zero: now).
func (p *Prometheus) QueryAt(t testing.TB, expr string, ts time.Time) float64 {
	t.Helper()
	v, err := single(p.QueryVectorAt(t, expr, ts))
	if err != nil {
		t.Fatalf("testenv: query %q: %v", expr, err)
	}
	return v
}

// QueryVector evaluates expr now and returns all its samples (a scalar is
// one sample without labels). It fails the test on an error.
func (p *Prometheus) QueryVector(t testing.TB, expr string) []Sample {
	t.Helper()
	return p.QueryVectorAt(t, expr, time.Time{})
}

// QueryVectorAt is QueryVector evaluated at ts (zero: now).
func (p *Prometheus) QueryVectorAt(t testing.TB, expr string, ts time.Time) []Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	samples, err := p.TryQuery(ctx, expr, ts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return samples
}

// WaitForQuery evaluates expr until it yields exactly one value for which
// cond holds, and returns that value. It fails the test after timeout,
// saying what the last answer was.
func (p *Prometheus) WaitForQuery(t testing.TB, expr string, cond func(float64) bool, timeout time.Duration) float64 {
	t.Helper()
	var v float64
	err := Poll(timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		samples, err := p.TryQuery(ctx, expr, time.Time{})
		if err != nil {
			return err
		}
		if v, err = single(samples); err != nil {
			return err
		}
		if !cond(v) {
			return fmt.Errorf("value %s", strconv.FormatFloat(v, 'g', -1, 64))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: query %q: condition not met within %s; last: %v", expr, timeout, err)
	}
	return v
}

func single(samples []Sample) (float64, error) {
	if len(samples) != 1 {
		return 0, fmt.Errorf("want exactly one sample, got %d: %v", len(samples), samples)
	}
	return samples[0].Value, nil
}

// TryQuery evaluates expr at ts (zero: now) through /api/v1/query and
// returns the samples of a vector, or a scalar as one sample without
// labels. It does not fail the test: WaitForQuery-style polling and tests
// of error paths use it.
func (p *Prometheus) TryQuery(ctx context.Context, expr string, ts time.Time) ([]Sample, error) {
	form := url.Values{"query": {expr}}
	if !ts.IsZero() {
		form.Set("time", strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", expr, resp.Status, err)
	}
	samples, err := decodeQueryResponse(body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", expr, resp.Status, err)
	}
	return samples, nil
}

func decodeQueryResponse(body []byte) ([]Sample, error) {
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode %.200q: %w", body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "scalar":
		var pair []any
		if err := json.Unmarshal(r.Data.Result, &pair); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		s, err := samplePair(pair)
		if err != nil {
			return nil, err
		}
		return []Sample{s}, nil
	case "vector":
		var elems []struct {
			Metric    map[string]string `json:"metric"`
			Value     []any             `json:"value"`
			Histogram json.RawMessage   `json:"histogram"`
		}
		if err := json.Unmarshal(r.Data.Result, &elems); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		samples := make([]Sample, 0, len(elems))
		for _, e := range elems {
			if e.Value == nil {
				return nil, fmt.Errorf("series %v: native histogram samples are not supported here", e.Metric)
			}
			s, err := samplePair(e.Value)
			if err != nil {
				return nil, fmt.Errorf("series %v: %w", e.Metric, err)
			}
			s.Metric = e.Metric
			samples = append(samples, s)
		}
		// A stable order makes failure messages comparable between runs.
		type keyed struct {
			key string
			s   Sample
		}
		ks := make([]keyed, len(samples))
		for i, s := range samples {
			ks[i] = keyed{toLabelSet(s.Metric).String(), s}
		}
		sort.SliceStable(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
		for i := range ks {
			samples[i] = ks[i].s
		}
		return samples, nil
	default:
		return nil, fmt.Errorf("result type %q: want vector or scalar", r.Data.ResultType)
	}
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// samplePair decodes the [unix seconds, "value"] pair of the query API.
func samplePair(pair []any) (Sample, error) {
	if len(pair) != 2 {
		return Sample{}, fmt.Errorf("sample %v: want [time, value]", pair)
	}
	ts, ok1 := pair[0].(float64)
	vs, ok2 := pair[1].(string)
	if !ok1 || !ok2 {
		return Sample{}, fmt.Errorf("sample %v: want [number, string]", pair)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("sample value %q: %w", vs, err)
	}
	return Sample{Value: v, Time: time.UnixMilli(int64(math.Round(ts * 1000)))}, nil
}
