package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/spf13/pflag"
)

// cleanEnv hides SLOGATE_* variables of the surrounding environment; viper
// treats empty variables as unset.
func cleanEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvPrefix+"CONFIG", "")
	for _, f := range fields {
		t.Setenv(envVar(f.key), "")
	}
}

// withDefs is the default configuration plus the one required key.
func withDefs(defs ...string) *Config {
	c := Default()
	c.Definitions = defs
	return c
}

// fullYAML is testdata/full.yaml as a Config.
func fullYAML() *Config {
	c := Default()
	c.Prometheus = Prometheus{
		URL:              "https://mimir.example.com/prometheus",
		Timeout:          20 * time.Second,
		MaxResponseBytes: 8 << 20,
		Headers:          map[string]string{"X-Scope-OrgID": "payments"},
		HTTP:             commoncfg.DefaultHTTPClientConfig,
	}
	c.Prometheus.HTTP.BasicAuth = &commoncfg.BasicAuth{Username: "slogate", Password: "hunter2"}
	c.Prometheus.HTTP.TLSConfig.CAFile = filepath.Join("testdata", "ca.pem")
	c.Alertmanager = Alertmanager{
		URLs:          []string{"http://am-0:9093", "http://am-1:9093"},
		ResendDelay:   2 * time.Minute,
		Timeout:       5 * time.Second,
		QueueCapacity: 500,
	}
	c.Evaluation = Evaluation{Interval: time.Minute, MaxConcurrency: 4, MinRange: 2 * time.Minute, ForecastWindow: 24 * time.Hour}
	c.Definitions = []string{filepath.Join("testdata", "defs"), "/etc/slogate/extra/*.yaml"}
	c.Reload.AllowEmpty = true
	c.Web = Web{
		ListenAddress: "127.0.0.1:9099",
		ConfigFile:    filepath.Join("testdata", "web.yml"),
		APITokenFile:  "/run/secrets/token",
		MaxBodyBytes:  512 << 10,
		ExternalURL:   "https://slogate.example.com",
		DashboardURL:  "https://grafana.example.com",
	}
	c.Storage.Path = "/var/lib/slogate"
	c.Log = Log{Level: "debug", Format: "json"}
	c.Shard = Shard{Index: 1, Count: 3}
	return c
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want func() *Config
	}{
		{
			name: "defaults",
			args: []string{"--definitions=defs"},
			want: func() *Config { return withDefs("defs") },
		},
		{
			name: "file only",
			file: "testdata/full.yaml",
			want: fullYAML,
		},
		{
			name: "file named by --config",
			args: []string{"--config=testdata/full.yaml"},
			want: fullYAML,
		},
		{
			name: "file named by SLOGATE_CONFIG",
			env:  map[string]string{"SLOGATE_CONFIG": "testdata/full.yaml"},
			want: fullYAML,
		},
		{
			name: "flags left at their defaults do not override the file",
			file: "testdata/full.yaml",
			args: []string{},
			want: fullYAML,
		},
		{
			name: "env over file",
			file: "testdata/full.yaml",
			env: map[string]string{
				"SLOGATE_EVALUATION_INTERVAL":        "2m",
				"SLOGATE_EVALUATION_MAX_CONCURRENCY": "16",
				"SLOGATE_ALERTMANAGER_URLS":          "http://x:9093, http://y:9093",
				"SLOGATE_PROMETHEUS_HEADERS":         "X-Scope-OrgID=ops,X-Extra=1",
				"SLOGATE_STORAGE_PATH":               "state",
				"SLOGATE_WEB_MAX_BODY_BYTES":         "4096",
				"SLOGATE_LOG_LEVEL":                  "", // empty counts as unset
				"SLOGATE_RELOAD_ALLOW_EMPTY":         "false",
			},
			want: func() *Config {
				c := fullYAML()
				c.Evaluation = Evaluation{Interval: 2 * time.Minute, MaxConcurrency: 16, MinRange: 2 * time.Minute, ForecastWindow: 24 * time.Hour}
				c.Alertmanager.URLs = []string{"http://x:9093", "http://y:9093"}
				c.Prometheus.Headers = map[string]string{"X-Scope-OrgID": "ops", "X-Extra": "1"}
				c.Storage.Path = "state" // from env: not relative to the file
				c.Web.MaxBodyBytes = 4096
				c.Reload.AllowEmpty = false
				return c
			},
		},
		{
			name: "flag over env",
			file: "testdata/full.yaml",
			env: map[string]string{
				"SLOGATE_EVALUATION_INTERVAL": "2m",
				"SLOGATE_DEFINITIONS":         "c",
				"SLOGATE_SHARD_COUNT":         "5",
				"SLOGATE_PROMETHEUS_HEADERS":  "X-Scope-OrgID=ops",
			},
			args: []string{
				"--evaluation.interval=45s",
				"--definitions=a", "--definitions=b",
				"--shard.index=4",
				"--prometheus.headers=X-Scope-OrgID=dev",
				"--prometheus.headers", `"Accept=text/plain, */*"`,
				"--web.max-body-bytes=2MiB",
				"--reload.allow-empty=false",
			},
			want: func() *Config {
				c := fullYAML()
				c.Evaluation.Interval = 45 * time.Second
				c.Definitions = []string{"a", "b"}
				c.Shard = Shard{Index: 4, Count: 5}
				c.Prometheus.Headers = map[string]string{"X-Scope-OrgID": "dev", "Accept": "text/plain, */*"}
				c.Web.MaxBodyBytes = 2 << 20
				c.Reload.AllowEmpty = false
				return c
			},
		},
		{
			name: "a bare boolean flag",
			env:  map[string]string{"SLOGATE_RELOAD_ALLOW_EMPTY": "false"},
			args: []string{"--definitions=defs", "--reload.allow-empty"},
			want: func() *Config {
				c := withDefs("defs")
				c.Reload.AllowEmpty = true
				return c
			},
		},
		{
			name: "a boolean from env",
			env:  map[string]string{"SLOGATE_RELOAD_ALLOW_EMPTY": "TRUE"},
			args: []string{"--definitions=defs"},
			want: func() *Config {
				c := withDefs("defs")
				c.Reload.AllowEmpty = true
				return c
			},
		},
		{
			name: "prometheus-style and go-style durations",
			env: map[string]string{
				"SLOGATE_ALERTMANAGER_RESEND_DELAY": "1h30m",
				"SLOGATE_PROMETHEUS_TIMEOUT":        "1.5s",
				"SLOGATE_EVALUATION_INTERVAL":       "1h",
			},
			args: []string{"--definitions=defs"},
			want: func() *Config {
				c := withDefs("defs")
				c.Alertmanager.ResendDelay = 90 * time.Minute
				c.Prometheus.Timeout = 1500 * time.Millisecond
				c.Evaluation.Interval = time.Hour
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Load(LoadOptions{File: tt.file, Flags: parseFlags(t, tt.args...)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			assertConfig(t, got, tt.want())
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string // every line of the joined error, in order
	}{
		{
			name: "unknown keys with their positions",
			file: "testdata/unknown-key.yaml",
			want: []string{
				`testdata/unknown-key.yaml:4:1: unknown key "evaluaton" (did you mean "evaluation"?)`,
				`testdata/unknown-key.yaml:7:3: unknown key "web.listen_address" (did you mean "web.listen-address"?)`,
				`testdata/unknown-key.yaml:9:1: unknown key "timeout" (did you mean "prometheus.timeout" or "alertmanager.timeout"?)`,
				`testdata/unknown-key.yaml:10:1: unknown key "prometheus.timeout" (keys nest in the file: write "prometheus:", then "timeout:" indented under it)`,
			},
		},
		{
			name: "bad duration from env names the variable",
			env:  map[string]string{"SLOGATE_EVALUATION_INTERVAL": "3x"},
			args: []string{"--definitions=defs"},
			want: []string{`evaluation.interval: "3x" is not a duration (from SLOGATE_EVALUATION_INTERVAL)`},
		},
		{
			name: "bad integer from env",
			env:  map[string]string{"SLOGATE_EVALUATION_MAX_CONCURRENCY": "lots"},
			args: []string{"--definitions=defs"},
			want: []string{`evaluation.max-concurrency: "lots" is not an integer (from SLOGATE_EVALUATION_MAX_CONCURRENCY)`},
		},
		{
			name: "bad boolean from env",
			env:  map[string]string{"SLOGATE_RELOAD_ALLOW_EMPTY": "yes please"},
			args: []string{"--definitions=defs"},
			want: []string{`reload.allow-empty: "yes please" is not a boolean (true or false) (from SLOGATE_RELOAD_ALLOW_EMPTY)`},
		},
		{
			name: "bad URL from a flag",
			args: []string{"--definitions=defs", "--prometheus.url=ftp://prometheus", "--alertmanager.urls=http://am:9093,am-1:9093"},
			want: []string{
				`prometheus.url: "ftp://prometheus" must start with http:// or https:// (from --prometheus.url)`,
				`alertmanager.urls: "am-1:9093" must start with http:// or https:// (from --alertmanager.urls)`,
			},
		},
		{
			name: "URL without host",
			env:  map[string]string{"SLOGATE_PROMETHEUS_URL": "http:///api"},
			args: []string{"--definitions=defs"},
			want: []string{`prometheus.url: "http:///api" has no host (from SLOGATE_PROMETHEUS_URL)`},
		},
		{
			name: "shard index out of range",
			args: []string{"--definitions=defs", "--shard.index=3", "--shard.count=3"},
			want: []string{`shard.index: must be in [0, 3) for shard.count 3, got 3 (from --shard.index)`},
		},
		{
			name: "shard count zero",
			env:  map[string]string{"SLOGATE_SHARD_COUNT": "0"},
			args: []string{"--definitions=defs"},
			want: []string{`shard.count: must be at least 1, got 0 (from SLOGATE_SHARD_COUNT)`},
		},
		{
			name: "definitions missing",
			want: []string{`definitions: at least one file, directory or glob is required (--definitions, SLOGATE_DEFINITIONS or definitions: in the config file)`},
		},
		{
			name: "bad values in the file, all reported",
			file: "testdata/bad-values.yaml",
			want: []string{
				`testdata/bad-values.yaml:6:20: evaluation.max-concurrency: expected a single value, got a list`,
				`testdata/bad-values.yaml:3:12: prometheus.timeout: "soon" is not a duration`,
				`testdata/bad-values.yaml:2:8: prometheus.url: "prometheus:9090" must start with http:// or https://`,
				`testdata/bad-values.yaml:5:13: evaluation.interval: must be at least 1s, got 500ms`,
				`testdata/bad-values.yaml:9:10: log.level: "verbose" is not one of debug, info, warn, error`,
				`testdata/bad-values.yaml:11:10: shard.index: must be in [0, 3) for shard.count 3, got 3`,
			},
		},
		{
			name: "HTTP client settings: misplaced and misspelt",
			file: "testdata/bad-http.yaml",
			want: []string{
				`testdata/bad-http.yaml:3:3: unknown key "prometheus.basic_auth" (HTTP client settings go under prometheus.http: did you mean "prometheus.http.basic_auth"?)`,
				`testdata/bad-http.yaml:8:7: prometheus.http: unknown key "pasword"`,
			},
		},
		{
			name: "HTTP client settings: validated by prometheus/common",
			file: "testdata/two-auths.yaml",
			want: []string{`testdata/two-auths.yaml:3:5: prometheus.http: at most one of basic_auth, oauth2 & authorization must be configured`},
		},
		{
			name: "a bad file value is reported even when a flag overrides it",
			file: "testdata/bad-values.yaml",
			args: []string{"--prometheus.url=http://ok:9090", "--prometheus.timeout=5s", "--evaluation.interval=5s",
				"--evaluation.max-concurrency=2", "--log.level=warn", "--shard.index=0"},
			want: []string{`testdata/bad-values.yaml:6:20: evaluation.max-concurrency: expected a single value, got a list`},
		},
		{
			name: "missing file",
			file: "testdata/nope.yaml",
			args: []string{"--definitions=defs"},
			want: []string{`read config file: open testdata/nope.yaml: no such file or directory`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load(LoadOptions{File: tt.file, Flags: parseFlags(t, tt.args...)})
			assertErrorLines(t, c, err, tt.want)
		})
	}
}

// TestLoadFileErrors covers malformed files written on the fly.
func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // with FILE standing for the file's path
	}{
		{
			name:    "syntax error",
			content: "definitions: [defs\nlog:\n  level: info\n",
			// Nothing after a syntax error is worth reporting: the values are unknown.
			want: []string{`FILE:1: did not find expected ',' or ']'`},
		},
		{
			name:    "two documents",
			content: "definitions: [defs]\n---\nlog: {level: info}\n",
			want:    []string{`FILE:2:1: only one YAML document is allowed in the config file`},
		},
		{
			name:    "not a mapping",
			content: "- definitions\n",
			want:    []string{`FILE:1:1: expected a mapping of keys, got a list`},
		},
		{
			name:    "section that is not a mapping",
			content: "definitions: [defs]\nevaluation: 30s\n",
			want:    []string{`FILE:2:13: evaluation: expected a mapping of keys, got "30s"`},
		},
		{
			name:    "duplicate key",
			content: "definitions: [defs]\nlog:\n  level: info\n  level: debug\n",
			want:    []string{`FILE:4:3: duplicate key "log.level" (first set at line 3)`},
		},
		{
			name:    "list item that is not a string",
			content: "definitions: [defs, {a: b}]\n",
			// Not followed by "definitions: ... required": the value is wrong, not missing.
			want: []string{`FILE:1:21: definitions: expected a string, got a mapping`},
		},
		{
			name:    "boolean that is not one",
			content: "definitions: [defs]\nreload:\n  allow-empty: sometimes\n",
			want:    []string{`FILE:3:16: reload.allow-empty: "sometimes" is not a boolean (true or false)`},
		},
		{
			name:    "headers that are not a mapping",
			content: "definitions: [defs]\nprometheus:\n  headers: [a]\n",
			want:    []string{`FILE:3:12: prometheus.headers: expected a mapping of header names to values, got a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "FILE", path)
			}
			c, err := Load(LoadOptions{File: path})
			assertErrorLines(t, c, err, want)
		})
	}
}

// TestLoadEmptyAndNullValues: an empty file and `key:` with no value leave
// the defaults alone.
func TestLoadEmptyAndNullValues(t *testing.T) {
	for name, content := range map[string]string{
		"empty file":    "",
		"comments only": "# nothing yet\n",
		"null values":   "evaluation:\n  interval:\nweb:\nprometheus:\n  http:\n",
	} {
		t.Run(name, func(t *testing.T) {
			cleanEnv(t)
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(LoadOptions{File: path, Flags: parseFlags(t, "--definitions=defs")})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			assertConfig(t, got, withDefs("defs"))
		})
	}
}

func TestFlagParseErrors(t *testing.T) {
	tests := []struct {
		name string
		arg  string
		want string
	}{
		{"duration", "--evaluation.interval=3x", `invalid argument "3x" for "--evaluation.interval" flag: not a duration (e.g. 30s, 5m, 1h30m, 1d)`},
		{"bytes", "--web.max-body-bytes=lots", `invalid argument "lots" for "--web.max-body-bytes" flag: not a size in bytes (e.g. 1048576 or 1MiB)`},
		{"header", "--prometheus.headers=X-Scope-OrgID", `invalid argument "X-Scope-OrgID" for "--prometheus.headers" flag: "X-Scope-OrgID" is not Name=Value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(&strings.Builder{})
			RegisterFlags(fs)
			err := fs.Parse([]string{tt.arg})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%s) = %v, want %s", tt.arg, err, tt.want)
			}
		})
	}
}

// TestFlagDefaults keeps the help text honest: every flag shows the
// default Load applies.
func TestFlagDefaults(t *testing.T) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	for _, f := range fields {
		fl := fs.Lookup(f.key)
		if f.kind == kindHTTP {
			if fl != nil {
				t.Errorf("--%s should not exist", f.key)
			}
			continue
		}
		if fl == nil {
			t.Errorf("--%s is missing", f.key)
			continue
		}
		if f.def != "" && fl.DefValue != f.def {
			t.Errorf("--%s default %q, want %q", f.key, fl.DefValue, f.def)
		}
		if !strings.Contains(fl.Usage, envVar(f.key)) {
			t.Errorf("--%s usage does not name %s", f.key, envVar(f.key))
		}
	}
}

// TestLoadForeignFlagSet: a command may define --config itself before
// RegisterFlags, or define only some key flags without RegisterFlags.
func TestLoadForeignFlagSet(t *testing.T) {
	want := fullYAML()
	want.Evaluation.Interval = 2 * time.Minute
	want.Definitions = []string{"mine"}

	t.Run("own --config", func(t *testing.T) {
		cleanEnv(t)
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.String(ConfigFlag, "", "the command's own --config")
		RegisterFlags(fs) // must not panic on the existing name
		if err := fs.Parse([]string{"--config=testdata/full.yaml", "--evaluation.interval=2m", "--definitions=mine"}); err != nil {
			t.Fatal(err)
		}
		got, err := Load(LoadOptions{Flags: fs})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		assertConfig(t, got, want)
	})
	t.Run("some flags only", func(t *testing.T) {
		cleanEnv(t)
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.StringSlice("definitions", nil, "")
		fs.Duration("evaluation.interval", 0, "")
		if err := fs.Parse([]string{"--evaluation.interval=2m", "--definitions=mine"}); err != nil {
			t.Fatal(err)
		}
		got, err := Load(LoadOptions{File: "testdata/full.yaml", Flags: fs})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		assertConfig(t, got, want)
	})
}

func TestEnvVar(t *testing.T) {
	for key, want := range map[string]string{
		"prometheus.url":             "SLOGATE_PROMETHEUS_URL",
		"evaluation.max-concurrency": "SLOGATE_EVALUATION_MAX_CONCURRENCY",
		"definitions":                "SLOGATE_DEFINITIONS",
	} {
		if got := envVar(key); got != want {
			t.Errorf("envVar(%q) = %q, want %q", key, got, want)
		}
	}
}

// parseFlags returns a flag set as `slogate serve` would have after parsing
// args; nil args means no flag set at all.
func parseFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	if args == nil {
		return nil
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	g.origins, w.origins = nil, nil
	if !reflect.DeepEqual(&g, &w) {
		t.Errorf("config mismatch\n--- got\n%s--- want\n%s", got, want)
		// String hides secrets and map order; show what differs beyond it.
		if got.String() == want.String() {
			t.Errorf("got  %#v\nwant %#v", g, w)
		}
	}
}

func assertErrorLines(t *testing.T, c *Config, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want errors:\n%s", strings.Join(want, "\n"))
	}
	if c != nil {
		t.Errorf("Load returned a config along with an error")
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}
