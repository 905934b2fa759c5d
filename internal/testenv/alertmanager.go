package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// AMOptions configures StartAlertmanager. The zero value is an Alertmanager
// whose only receiver drops everything.
type AMOptions struct {
	// WebhookURL, if set, is where the default receiver posts
	// notifications (send_resolved on).
	WebhookURL string
	// GroupBy is the route's group_by; default ["..."], one group per
	// alert, so that each alert is notified on its own.
	GroupBy []string
	// GroupWait, GroupInterval and RepeatInterval of the route; defaults
	// 0s, 1s and 1h, so that a test sees a notification at once.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// Config, if set, is the whole alertmanager.yml, used instead of the
	// generated one (e.g. a routing tree from examples/).
	Config string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// Alertmanager is a running (or stopped) real Alertmanager, without
// clustering.
type Alertmanager struct {
	proc       *process
	configPath string
	storage    string
	client     *http.Client
}

// amMaintenanceInterval is how often Alertmanager writes its notification
// log to disk (default 15m), so that NotificationLogged sees an entry soon
// after Alertmanager made it.
const amMaintenanceInterval = 250 * time.Millisecond

// StartAlertmanager starts the pinned Alertmanager binary on a free
// loopback port and returns once it answers /-/ready. It is stopped when
// the test ends.
func StartAlertmanager(t testing.TB, opts AMOptions) *Alertmanager {
	t.Helper()
	bin := Binary(t, "alertmanager")
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	configPath := filepath.Join(dir, "alertmanager.yml")
	cfg := []byte(opts.Config)
	if opts.Config == "" {
		var err error
		if cfg, err = amConfigYAML(opts); err != nil {
			t.Fatalf("testenv: alertmanager config: %v", err)
		}
	}
	if err := os.WriteFile(configPath, cfg, 0o644); err != nil {
		t.Fatalf("testenv: alertmanager config: %v", err)
	}
	proc := launch(t, func(port int) (*process, error) {
		addr := loopbackAddr(port)
		args := []string{
			"--config.file=" + configPath,
			"--storage.path=" + storage,
			"--web.listen-address=" + addr,
			"--cluster.listen-address=", // no gossip: a single instance
			"--data.maintenance-interval=" + model.Duration(amMaintenanceInterval).String(),
		}
		args = append(args, opts.ExtraArgs...)
		return &process{
			name:    "alertmanager",
			bin:     bin,
			args:    args,
			logPath: filepath.Join(dir, "alertmanager.log"),
			addr:    addr,
		}, nil
	})
	return &Alertmanager{proc: proc, configPath: configPath, storage: storage, client: newHTTPClient()}
}

type amConfig struct {
	Route struct {
		Receiver       string   `yaml:"receiver"`
		GroupBy        []string `yaml:"group_by"`
		GroupWait      string   `yaml:"group_wait"`
		GroupInterval  string   `yaml:"group_interval"`
		RepeatInterval string   `yaml:"repeat_interval"`
	} `yaml:"route"`
	Receivers []amReceiver `yaml:"receivers"`
}

type amReceiver struct {
	Name           string            `yaml:"name"`
	WebhookConfigs []amWebhookConfig `yaml:"webhook_configs,omitempty"`
}

type amWebhookConfig struct {
	URL          string `yaml:"url"`
	SendResolved bool   `yaml:"send_resolved"`
}

func amConfigYAML(opts AMOptions) ([]byte, error) {
	var cfg amConfig
	cfg.Route.Receiver = "default"
	cfg.Route.GroupBy = opts.GroupBy
	if len(cfg.Route.GroupBy) == 0 {
		cfg.Route.GroupBy = []string{"..."}
	}
	if opts.GroupInterval <= 0 {
		opts.GroupInterval = time.Second
	}
	if opts.RepeatInterval <= 0 {
		opts.RepeatInterval = time.Hour
	}
	cfg.Route.GroupWait = model.Duration(max(opts.GroupWait, 0)).String()
	cfg.Route.GroupInterval = model.Duration(opts.GroupInterval).String()
	cfg.Route.RepeatInterval = model.Duration(opts.RepeatInterval).String()
	recv := amReceiver{Name: "default"}
	if opts.WebhookURL != "" {
		recv.WebhookConfigs = []amWebhookConfig{{URL: opts.WebhookURL, SendResolved: true}}
	}
	cfg.Receivers = []amReceiver{recv}
	return yaml.Marshal(&cfg)
}

// URL is the server's base URL, e.g. http://127.0.0.1:41234.
func (a *Alertmanager) URL() string { return "http://" + a.proc.addr }

// Addr is the server's host:port.
func (a *Alertmanager) Addr() string { return a.proc.addr }

// ConfigPath is the alertmanager.yml it was started with.
func (a *Alertmanager) ConfigPath() string { return a.configPath }

// LogPath is the file that holds the server's output.
func (a *Alertmanager) LogPath() string { return a.proc.logPath }

// Stop shuts the server down (SIGTERM, SIGKILL after 10s) and waits for it
// to exit. Stopping a stopped server does nothing.
func (a *Alertmanager) Stop() { a.proc.stop() }

// Kill ends the server with SIGKILL and waits for it.
func (a *Alertmanager) Kill() { a.proc.kill() }

// Restart stops the server if it runs and starts it again on the same port
// and storage. Silences and the notification log survive; alerts, which
// Alertmanager keeps in memory only, do not until they are sent again.
func (a *Alertmanager) Restart(t testing.TB) {
	t.Helper()
	a.proc.restart(t)
}

// NotificationLogged reports whether Alertmanager's notification log holds
// an entry for a group whose labels include labels. Alertmanager writes the
// entry after the receiver has answered, and needs it to notify the resolve
// of an alert that fired before a restart: a test that stops Alertmanager
// after a notification waits for this, not for the webhook alone. It reads
// the log's snapshot on disk (nflog), written every 250 ms.
func (a *Alertmanager) NotificationLogged(labels map[string]string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(a.storage, "nflog"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("testenv: alertmanager notification log: %w", err)
	}
	// An entry's group key is "<route key>:<group labels>", the labels as
	// model.LabelSet prints them: {a="1", b="2"}.
	for _, m := range groupKeyRE.FindAllSubmatch(b, -1) {
		group := string(m[1])
		all := true
		for k, v := range labels {
			kv := k + "=" + strconv.Quote(v)
			all = all && (strings.Contains(group, "{"+kv) || strings.Contains(group, " "+kv))
		}
		if all {
			return true, nil
		}
	}
	return false, nil
}

var groupKeyRE = regexp.MustCompile(`\}:(\{[^{}]*\})`)

// AMAlert is an alert as the v2 API lists it (GET /api/v2/alerts). For
// PostAlerts only Labels, Annotations, StartsAt, EndsAt and GeneratorURL
// count.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	UpdatedAt    time.Time         `json:"updatedAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
	Status       AMAlertStatus     `json:"status,omitzero"`
	Receivers    []struct {
		Name string `json:"name"`
	} `json:"receivers,omitempty"`
}

// AMAlertStatus is the status of a listed alert.
type AMAlertStatus struct {
	State       string   `json:"state"` // unprocessed, active or suppressed
	SilencedBy  []string `json:"silencedBy"`
	InhibitedBy []string `json:"inhibitedBy"`
}

// Alerts lists every alert Alertmanager holds, active, silenced, inhibited
// and unprocessed, as GET /api/v2/alerts returns them.
func (a *Alertmanager) Alerts(t testing.TB) []AMAlert {
	t.Helper()
	var alerts []AMAlert
	if err := a.do(http.MethodGet, "/api/v2/alerts", nil, &alerts); err != nil {
		t.Fatalf("testenv: alertmanager alerts: %v", err)
	}
	return alerts
}

// PostAlerts sends alerts to POST /api/v2/alerts, as Prometheus or slogate
// would, and fails the test if Alertmanager refuses them.
func (a *Alertmanager) PostAlerts(t testing.TB, alerts ...AMAlert) {
	t.Helper()
	type postable struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations,omitempty"`
		StartsAt     time.Time         `json:"startsAt,omitzero"`
		EndsAt       time.Time         `json:"endsAt,omitzero"`
		GeneratorURL string            `json:"generatorURL,omitempty"`
	}
	body := make([]postable, len(alerts))
	for i, al := range alerts {
		body[i] = postable{al.Labels, al.Annotations, al.StartsAt, al.EndsAt, al.GeneratorURL}
	}
	if err := a.do(http.MethodPost, "/api/v2/alerts", body, nil); err != nil {
		t.Fatalf("testenv: alertmanager post alerts: %v", err)
	}
}

// do sends in as JSON (unless nil) and decodes the answer into out (unless
// nil).
func (a *Alertmanager) do(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reqBody io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		reqBody = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL()+path, reqBody)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode %.200q: %w", method, path, body, err)
	}
	return nil
}
