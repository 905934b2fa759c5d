package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
)

func TestDefault(t *testing.T) {
	want := &Config{
		Prometheus: Prometheus{
			URL:              "http://localhost:9090",
			Timeout:          10 * time.Second,
			MaxResponseBytes: 8 << 20,
			HTTP:             commoncfg.DefaultHTTPClientConfig,
		},
		Alertmanager: Alertmanager{ResendDelay: time.Minute, Timeout: 10 * time.Second, QueueCapacity: 10000},
		Evaluation:   Evaluation{Interval: 30 * time.Second, MaxConcurrency: 8, MinRange: 2 * time.Minute, ForecastWindow: 24 * time.Hour},
		Web:          Web{ListenAddress: ":8080", MaxBodyBytes: 1 << 20},
		Sloth:        Sloth{DefaultPeriod: 30 * 24 * time.Hour},
		Storage:      Storage{Path: "data/"},
		Log:          Log{Level: "info", Format: "console"},
		Shard:        Shard{Index: 0, Count: 1},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%s\nwant\n%s", got, want)
	}
	// The only default that is not valid on its own is the missing
	// definitions.
	if err := Default().Validate(); err == nil || !strings.HasPrefix(err.Error(), "definitions: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Default().Validate() = %v, want only the definitions error", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // nil: valid
	}{
		{name: "defaults with definitions", modify: func(*Config) {}},
		{
			name:   "interval below one second",
			modify: func(c *Config) { c.Evaluation.Interval = 999 * time.Millisecond },
			want:   []string{"evaluation.interval: must be at least 1s, got 999ms"},
		},
		{
			name:   "forecast window not evaluated",
			modify: func(c *Config) { c.Evaluation.ForecastWindow = 12 * time.Hour },
			want:   []string{"evaluation.forecast-window: must be one of the evaluated windows (5m, 30m, 1h, 2h, 6h, 1d, 3d), got 12h"},
		},
		{
			name:   "interval of exactly one second",
			modify: func(c *Config) { c.Evaluation.Interval = time.Second },
		},
		{
			name: "non-positive durations and counts",
			modify: func(c *Config) {
				c.Prometheus.Timeout = 0
				c.Alertmanager.ResendDelay = -time.Second
				c.Alertmanager.QueueCapacity = 0
				c.Evaluation.MaxConcurrency = 0
				c.Web.MaxBodyBytes = 0
			},
			want: []string{
				"prometheus.timeout: must be positive, got 0s",
				"alertmanager.resend-delay: must be positive, got -1s",
				"alertmanager.queue-capacity: must be at least 1, got 0",
				"evaluation.max-concurrency: must be at least 1, got 0",
				"web.max-body-bytes: must be positive, got 0",
			},
		},
		{
			name: "URLs",
			modify: func(c *Config) {
				c.Prometheus.URL = ""
				c.Alertmanager.URLs = []string{"https://am:9093", "http://am-1:9093/%zz"}
				c.Web.ExternalURL = "slogate.example.com"
				c.Web.DashboardURL = "https://grafana"
			},
			want: []string{
				"prometheus.url: must not be empty",
				`alertmanager.urls: "http://am-1:9093/%zz" is not a URL: invalid URL escape "%zz"`,
				`web.external-url: "slogate.example.com" must start with http:// or https://`,
			},
		},
		{
			name: "listen address, storage path, log settings",
			modify: func(c *Config) {
				c.Web.ListenAddress = "8080"
				c.Storage.Path = ""
				c.Log = Log{Level: "INFO", Format: "logfmt"}
			},
			want: []string{
				`web.listen-address: "8080" is not host:port: missing port in address`,
				"storage.path: must not be empty (or set storage.url)",
				`log.level: "INFO" is not one of debug, info, warn, error`,
				`log.format: "logfmt" is not one of console, json`,
			},
		},
		{
			name:   "empty listen address",
			modify: func(c *Config) { c.Web.ListenAddress = "" },
			want:   []string{"web.listen-address: must not be empty"},
		},
		{
			name:   "negative shard index",
			modify: func(c *Config) { c.Shard = Shard{Index: -1, Count: 2} },
			want:   []string{"shard.index: must be in [0, 2) for shard.count 2, got -1"},
		},
		{
			name:   "last shard",
			modify: func(c *Config) { c.Shard = Shard{Index: 1, Count: 2} },
		},
		{
			name:   "bad header",
			modify: func(c *Config) { c.Prometheus.Headers = map[string]string{"X Scope": "a"} },
			want:   []string{`prometheus.headers: "X Scope" is not a valid header name`},
		},
		{
			name: "HTTP client config validated",
			modify: func(c *Config) {
				c.Prometheus.HTTP.BearerToken = "a"
				c.Prometheus.HTTP.BasicAuth = &commoncfg.BasicAuth{Username: "u"}
			},
			want: []string{"prometheus.http: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withDefs("defs")
			tt.modify(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate():\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestHTTPClientConfig: prometheus.http is read by prometheus/common's rules
// (its defaults included), relative files resolve against the config file,
// and the result validates.
func TestHTTPClientConfig(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	content := `definitions: [defs]
prometheus:
  http:
    basic_auth:
      username: slogate
      password_file: secrets/password
    tls_config:
      ca_file: /etc/ssl/ca.pem
      insecure_skip_verify: true
    proxy_url: http://proxy:3128
`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(LoadOptions{File: path})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	h := c.Prometheus.HTTP
	if h.BasicAuth == nil || h.BasicAuth.Username != "slogate" {
		t.Fatalf("basic_auth = %+v", h.BasicAuth)
	}
	if want := filepath.Join(dir, "secrets/password"); h.BasicAuth.PasswordFile != want {
		t.Errorf("password_file = %q, want %q (relative to the config file)", h.BasicAuth.PasswordFile, want)
	}
	if h.TLSConfig.CAFile != "/etc/ssl/ca.pem" || !h.TLSConfig.InsecureSkipVerify {
		t.Errorf("tls_config = %+v", h.TLSConfig)
	}
	if h.ProxyURL.String() != "http://proxy:3128" {
		t.Errorf("proxy_url = %v", h.ProxyURL)
	}
	if !h.FollowRedirects || !h.EnableHTTP2 {
		t.Errorf("prometheus/common defaults lost: follow_redirects=%v enable_http2=%v", h.FollowRedirects, h.EnableHTTP2)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestRelativePaths: paths written in the file are relative to the file,
// as in Prometheus; paths from flags stay relative to the working directory.
func TestRelativePaths(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	content := "definitions: [defs/, /abs/defs, '*.yaml']\nstorage: {path: state}\nweb: {config-file: web.yml, api-token-file: token}\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(LoadOptions{File: path, Flags: parseFlags(t, "--web.config-file=flag-web.yml")})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantDefs := []string{filepath.Join(dir, "defs"), "/abs/defs", filepath.Join(dir, "*.yaml")}
	if !reflect.DeepEqual(c.Definitions, wantDefs) {
		t.Errorf("definitions = %q, want %q", c.Definitions, wantDefs)
	}
	if want := filepath.Join(dir, "state"); c.Storage.Path != want {
		t.Errorf("storage.path = %q, want %q", c.Storage.Path, want)
	}
	if want := filepath.Join(dir, "token"); c.Web.APITokenFile != want {
		t.Errorf("web.api-token-file = %q, want %q", c.Web.APITokenFile, want)
	}
	if c.Web.ConfigFile != "flag-web.yml" {
		t.Errorf("web.config-file = %q, want the flag's value untouched", c.Web.ConfigFile)
	}
}

func TestRedaction(t *testing.T) {
	c := withDefs("defs")
	c.Prometheus.Headers = map[string]string{
		"X-Scope-OrgID": "payments",
		"Authorization": "Bearer abc123",
		"X-Api-Key":     "k3y",
		"Cookie":        "session=s3ss",
		"X-Auth-Token":  "t0k",
	}
	c.Prometheus.HTTP.BasicAuth = &commoncfg.BasicAuth{Username: "slogate", Password: "hunter2"}
	c.Prometheus.HTTP.OAuth2 = nil

	out := c.String()
	for _, secret := range []string{"abc123", "k3y", "s3ss", "t0k", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("String() leaks %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"    X-Scope-OrgID: payments\n",
		"    Authorization: <secret>\n",
		"    X-Api-Key: <secret>\n",
		"      username: slogate\n",
		"      password: <secret>\n",
		"  interval: 30s\n",
		"  max-body-bytes: 1MiB\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	if c.Prometheus.Headers["Authorization"] != "Bearer abc123" {
		t.Errorf("Redacted modified the original")
	}

	// The dump is a config file Load accepts, giving the same settings
	// (secrets aside).
	cleanEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := Load(LoadOptions{File: path})
	if err != nil {
		t.Fatalf("Load(String()): %v\n%s", err, out)
	}
	want := c.Redacted()
	want.Prometheus.HTTP.BasicAuth = &commoncfg.BasicAuth{Username: "slogate", Password: "<secret>"}
	// Read from a file, relative paths are relative to that file.
	want.Definitions = []string{filepath.Join(dir, "defs")}
	want.Storage.Path = filepath.Join(dir, "data")
	assertConfig(t, back, want)
}

func TestRoundTripFull(t *testing.T) {
	cleanEnv(t)
	c, err := Load(LoadOptions{File: "testdata/full.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.yaml")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := Load(LoadOptions{File: path})
	if err != nil {
		t.Fatalf("Load(String()): %v\n%s", err, c)
	}
	want := fullYAML()
	want.Prometheus.HTTP.BasicAuth.Password = Redacted
	want.Prometheus.HTTP.TLSConfig.CAFile = filepath.Join(dir, "testdata", "ca.pem")
	want.Definitions[0] = filepath.Join(dir, "testdata", "defs")
	want.Web.ConfigFile = filepath.Join(dir, "testdata", "web.yml")
	assertConfig(t, back, want)
}

func TestAPIToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		want    string
		wantErr error
	}{
		{name: "none configured", file: "", want: ""},
		{name: "trimmed", file: write("token", "  s3cret\n"), want: "s3cret"},
		{name: "empty file", file: write("empty", "\n"), wantErr: ErrNoAPIToken},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Web{APITokenFile: tt.file}.APIToken()
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("APIToken() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		prefix, name string
		want         string
	}{
		{"", "evaluaton", ` (did you mean "evaluation"?)`},
		{"", "definition", ` (did you mean "definitions"?)`},
		{"alertmanager", "url", ` (did you mean "alertmanager.urls"?)`},
		{"web", "max_body_bytes", ` (did you mean "web.max-body-bytes"?)`},
		{"", "interval", ` (did you mean "evaluation.interval"?)`},
		{"", "listen-address", ` (did you mean "web.listen-address"?)`},
		{"evaluation", "zzz", ``},
	}
	for _, tt := range tests {
		sec := schema
		if tt.prefix != "" {
			sec = schema.children[tt.prefix]
		}
		if got := suggest(tt.prefix, tt.name, sec); got != tt.want {
			t.Errorf("suggest(%q, %q) = %q, want %q", tt.prefix, tt.name, got, tt.want)
		}
	}
}
