// Package config is the configuration of `slogate serve`: a typed struct,
// its defaults, its validation, and Load, which merges a YAML file, SLOGATE_*
// environment variables and command-line flags with viper.
//
// Every key has the same dotted name everywhere: `evaluation.interval` is
// the YAML path evaluation: {interval: ...}, the flag --evaluation.interval
// and the variable SLOGATE_EVALUATION_INTERVAL. Flags win over the
// environment, which wins over the file, which wins over the defaults.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/internal/redact"
	"github.com/slogate/slogate/slo"
)

// Config is the service configuration. Durations are time.Duration and
// sizes int64 bytes whatever the notation used to set them.
type Config struct {
	Prometheus   Prometheus
	Alertmanager Alertmanager
	Evaluation   Evaluation
	// Definitions are files, directories and globs of definition files.
	Definitions []string
	Reload      Reload
	Sloth       Sloth
	Web         Web
	Storage     Storage
	Log         Log
	Shard       Shard

	// origins remembers where each key's value came from, so that Validate
	// can say which flag, variable or file line to fix. Nil for a Config
	// built in code.
	origins map[string]origin
}

// Prometheus is where queries go.
type Prometheus struct {
	URL string
	// Timeout bounds every query, instant and range. It is also the
	// evaluation's per-query timeout: a separate evaluation.query-timeout
	// would only be a second name for the same limit.
	Timeout time.Duration
	// MaxResponseBytes bounds the body of an answer; larger ones are
	// refused (a bad result) without being read whole.
	MaxResponseBytes int64
	// Headers are sent with every query, e.g. X-Scope-OrgID for Mimir or
	// Cortex tenants. Plain values; use HTTP.HTTPHeaders for values read
	// from files.
	Headers map[string]string
	HTTP    commoncfg.HTTPClientConfig
}

// Alertmanager is where alerts go.
type Alertmanager struct {
	// URLs of every Alertmanager of an HA cluster; each gets every alert.
	// Empty: alerting is off.
	URLs          []string
	ResendDelay   time.Duration
	Timeout       time.Duration
	QueueCapacity int
}

// Evaluation is the loop's rhythm.
type Evaluation struct {
	Interval       time.Duration
	MaxConcurrency int
	// MinRange is the shortest range in the query of a slice: rate(x[R])
	// needs two samples, so R must be at least twice the scrape interval.
	MinRange time.Duration
	// ForecastWindow is the window whose burn rate budget forecasts
	// assume goes on; one of slo.StandardWindows.
	ForecastWindow time.Duration
}

// Reload configures how a changed set of definitions is taken on.
type Reload struct {
	// AllowEmpty accepts a reload whose definitions define nothing. Off, such
	// a reload is refused, because a truncated or emptied file looks the
	// same and applying it would drop every SLO and abort every active run.
	// At start an empty set is always accepted: a fresh install may begin
	// with nothing defined.
	AllowEmpty bool
}

// Sloth configures how Sloth specs are read.
type Sloth struct {
	// DefaultPeriod is the SLO window of Sloth SLOs, whose specs have none
	// (Sloth's --default-slo-period).
	DefaultPeriod time.Duration
}

// Web is the HTTP listener.
type Web struct {
	ListenAddress string
	ConfigFile    string // exporter-toolkit web config; empty: plain HTTP, no auth
	APITokenFile  string // bearer token for mutating endpoints; empty: none required
	MaxBodyBytes  int64
	ExternalURL   string
	DashboardURL  string
	EnablePprof   bool // serve /debug/pprof/
}

// Storage is the embedded database (Path), or the PostgreSQL database
// replicas share (URL).
type Storage struct {
	Path         string
	URL          string
	PasswordFile string
	Replica      string
}

// Log configures logging. Format defaults to console because the first
// contact with the tool is a terminal; production deployments set json.
type Log struct {
	Level  string // debug | info | warn | error
	Format string // console | json
}

// Shard selects this replica's share of the SLOs.
type Shard struct {
	Index int
	Count int
}

// Log levels and formats accepted by Validate.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"console", "json"}
)

// MinEvaluationInterval is the shortest evaluation.interval: below it the
// loop mostly measures Prometheus's own scrape jitter.
const MinEvaluationInterval = time.Second

// Default returns the configuration with every default applied. It does not
// validate: Definitions has no default.
func Default() *Config {
	c := &Config{}
	for _, f := range fields {
		switch f.kind {
		case kindHeaders:
		case kindHTTP:
			c.Prometheus.HTTP = commoncfg.DefaultHTTPClientConfig
		default:
			if err := f.set(c, f.def); err != nil {
				panic(fmt.Sprintf("config: bad default for %s: %v", f.key, err))
			}
		}
	}
	return c
}

// problem is a validation failure of one key.
type problem struct {
	key string
	msg string
}

// Validate checks ranges and formats, and returns every problem at once
// (errors.Join), each naming its key and, after Load, where its value came
// from.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, c.origins[p.key].annotate(p.key, p.msg))
	}
	return errors.Join(errs...)
}

func (c *Config) problems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	checkURL := func(key, u string, required bool) {
		if u == "" {
			if required {
				add(key, "must not be empty")
			}
			return
		}
		if err := checkHTTPURL(u); err != nil {
			add(key, "%s", err)
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			add(key, "must be positive, got %s", d)
		}
	}

	checkURL("prometheus.url", c.Prometheus.URL, true)
	positive("prometheus.timeout", c.Prometheus.Timeout)
	if c.Prometheus.MaxResponseBytes <= 0 {
		add("prometheus.max-response-bytes", "must be positive, got %d", c.Prometheus.MaxResponseBytes)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Prometheus.Headers)) {
		value := c.Prometheus.Headers[name]
		if name == "" || strings.ContainsAny(name, " \t:\r\n") {
			add("prometheus.headers", "%q is not a valid header name", name)
		}
		if strings.ContainsAny(value, "\r\n") {
			add("prometheus.headers", "value of %s contains a line break", name)
		}
	}
	if err := c.Prometheus.HTTP.Validate(); err != nil {
		add("prometheus.http", "%s", err)
	}

	for _, u := range c.Alertmanager.URLs {
		checkURL("alertmanager.urls", u, true)
	}
	positive("alertmanager.resend-delay", c.Alertmanager.ResendDelay)
	positive("alertmanager.timeout", c.Alertmanager.Timeout)
	if c.Alertmanager.QueueCapacity < 1 {
		add("alertmanager.queue-capacity", "must be at least 1, got %d", c.Alertmanager.QueueCapacity)
	}

	if c.Evaluation.Interval < MinEvaluationInterval {
		add("evaluation.interval", "must be at least %s, got %s", MinEvaluationInterval, c.Evaluation.Interval)
	}
	if c.Evaluation.Interval >= MinEvaluationInterval && time.Hour%c.Evaluation.Interval != 0 {
		add("evaluation.interval", "must divide 1h evenly (10s, 15s, 30s, 1m, 5m...), got %s", c.Evaluation.Interval)
	}
	positive("evaluation.min-range", c.Evaluation.MinRange)
	if !slices.Contains(slo.StandardWindows, c.Evaluation.ForecastWindow) {
		add("evaluation.forecast-window", "must be one of the evaluated windows (5m, 30m, 1h, 2h, 6h, 1d, 3d), got %s", slo.FormatDuration(c.Evaluation.ForecastWindow))
	}
	if c.Evaluation.MaxConcurrency < 1 {
		add("evaluation.max-concurrency", "must be at least 1, got %d", c.Evaluation.MaxConcurrency)
	}

	if len(c.Definitions) == 0 {
		add("definitions", "at least one file, directory or glob is required (--definitions, %s or definitions: in the config file)", envVar("definitions"))
	}

	// The bounds of an SLO window (slo.MinWindow, slo.MaxWindow).
	if p := c.Sloth.DefaultPeriod; p < time.Hour || p > 90*24*time.Hour {
		add("sloth.default-period", "must be between 1h and 90d (an SLO window), got %s", p)
	}

	if c.Web.ListenAddress == "" {
		add("web.listen-address", "must not be empty")
	} else if _, _, err := net.SplitHostPort(c.Web.ListenAddress); err != nil {
		add("web.listen-address", "%q is not host:port: %s", c.Web.ListenAddress, stripAddrErr(err))
	}
	if c.Web.MaxBodyBytes <= 0 {
		add("web.max-body-bytes", "must be positive, got %d", c.Web.MaxBodyBytes)
	}
	checkURL("web.external-url", c.Web.ExternalURL, false)
	checkURL("web.dashboard-url", c.Web.DashboardURL, false)

	if c.Storage.Path == "" && c.Storage.URL == "" {
		add("storage.path", "must not be empty (or set storage.url)")
	}
	if u := c.Storage.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		add("storage.url", "must be a postgres:// URL, got %q", redactURL(u))
	}

	if !oneOf(c.Log.Level, LogLevels) {
		add("log.level", "%q is not one of %s", c.Log.Level, strings.Join(LogLevels, ", "))
	}
	if !oneOf(c.Log.Format, LogFormats) {
		add("log.format", "%q is not one of %s", c.Log.Format, strings.Join(LogFormats, ", "))
	}

	if c.Shard.Count < 1 {
		add("shard.count", "must be at least 1, got %d", c.Shard.Count)
	} else if c.Shard.Index < 0 || c.Shard.Index >= c.Shard.Count {
		add("shard.index", "must be in [0, %d) for shard.count %d, got %d", c.Shard.Count, c.Shard.Count, c.Shard.Index)
	}
	return ps
}

// checkHTTPURL accepts absolute http(s) URLs with a host. Its messages quote
// the URL with its password hidden.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %s", redact.URL(s), stripURLErr(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", redact.URL(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redact.URL(s))
	}
	return nil
}

// stripURLErr drops url.Error's repetition of the operation and the URL,
// which the message already shows.
func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func stripAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// Redacted is the placeholder for secret values; prometheus/common uses the
// same one for its Secret type.
const Redacted = "<secret>"

// isSecretHeader guesses from its name whether a header carries a credential.
func isSecretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "token", "key", "cookie", "secret", "passw", "credential", "session"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Redacted returns a copy safe to print or expose: headers whose names look
// like credentials carry Redacted instead of their value. Secrets of the
// HTTP client config are already hidden when marshalled (their Secret
// type); the copy shares its pointers with c.
func (c *Config) Redacted() *Config {
	r := *c
	r.Definitions = append([]string(nil), c.Definitions...)
	r.Alertmanager.URLs = append([]string(nil), c.Alertmanager.URLs...)
	if c.Prometheus.Headers != nil {
		r.Prometheus.Headers = make(map[string]string, len(c.Prometheus.Headers))
		for k, v := range c.Prometheus.Headers {
			if isSecretHeader(k) {
				v = Redacted
			}
			r.Prometheus.Headers[k] = v
		}
	}
	return &r
}

// String is the configuration as YAML, secrets redacted. It is what Load
// reads (with secrets to fill back in), so it can be logged at startup and
// pasted into a bug report.
func (c *Config) String() string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Sprintf("<config: %v>", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Sprintf("<config: %v>", err)
	}
	return b.String()
}

// MarshalYAML renders the configuration with the keys Load reads, durations
// as 30s rather than nanoseconds, and secrets redacted, so that marshalling
// a Config can never leak a credential.
func (c Config) MarshalYAML() (any, error) {
	r := c.Redacted()
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		var value *yaml.Node
		switch f.kind {
		case kindHeaders:
			value = &yaml.Node{Kind: yaml.MappingNode}
			for _, k := range slices.Sorted(maps.Keys(r.Prometheus.Headers)) {
				value.Content = append(value.Content, strNode(k), strNode(r.Prometheus.Headers[k]))
			}
		case kindHTTP:
			// Marshalled by prometheus/common's own YAML library and rules,
			// which is also what turns its Secret values into <secret>.
			b, err := yamlv2.Marshal(r.Prometheus.HTTP)
			if err != nil {
				return nil, fmt.Errorf("prometheus.http: %w", err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(b, &doc); err != nil {
				return nil, fmt.Errorf("prometheus.http: %w", err)
			}
			value = doc.Content[0]
		default:
			value = &yaml.Node{}
			if err := value.Encode(f.format(r)); err != nil {
				return nil, fmt.Errorf("%s: %w", f.key, err)
			}
		}
		insert(root, strings.Split(f.key, "."), value)
	}
	return root, nil
}

// insert puts value at path in a tree of mapping nodes, creating sections
// in the order keys first appear.
func insert(m *yaml.Node, path []string, value *yaml.Node) {
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Value == path[0] {
			insert(m.Content[i+1], path[1:], value)
			return
		}
	}
	if len(path) == 1 {
		m.Content = append(m.Content, strNode(path[0]), value)
		return
	}
	section := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, strNode(path[0]), section)
	insert(section, path[1:], value)
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// ErrNoAPIToken is returned by APIToken for an empty token file: an empty
// token would let every request through, which is not what anyone setting
// the option wants.
var ErrNoAPIToken = errors.New("token file is empty")

// APIToken reads the bearer token from APITokenFile, without surrounding
// whitespace. It returns "" when no token file is configured.
func (w Web) APIToken() (string, error) {
	if w.APITokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(w.APITokenFile)
	if err != nil {
		return "", fmt.Errorf("web.api-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("web.api-token-file %s: %w", w.APITokenFile, ErrNoAPIToken)
	}
	return token, nil
}

// redactURL hides a password in a URL quoted in an error.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
			return p.String()
		}
	}
	return u
}
