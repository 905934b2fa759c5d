package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/slo"
)

// kind says how a key's text is turned into its typed value.
type kind int

const (
	kindString kind = iota
	kindDuration
	kindInt
	kindBytes
	kindBool
	kindStrings
	// kindHeaders (prometheus.headers) does not go through viper: viper
	// lower-cases map keys, and header names should stay as the user wrote them.
	kindHeaders
	// kindHTTP (prometheus.http) is read from the file only, by
	// prometheus/common's own YAML rules, like Prometheus does.
	kindHTTP
)

// field is one configuration key. The table below is the single source of
// the key names, defaults, flags, environment variables and the known-key
// set used to reject unknown keys in the file, so they cannot drift apart.
type field struct {
	key   string // dotted: the YAML path, the flag name, and (upper-cased) the env var
	kind  kind
	def   string // default as it would be written on the command line; "" is the zero value
	path  bool   // a file path: relative values in the config file are taken relative to it
	usage string
	ptr   func(*Config) any // pointer to the field in a Config
}

var fields = []field{
	{key: "prometheus.url", kind: kindString, def: "http://localhost:9090",
		usage: "Base URL of the Prometheus-compatible query API (Prometheus, Thanos Query, Mimir, Cortex, VictoriaMetrics).",
		ptr:   func(c *Config) any { return &c.Prometheus.URL }},
	{key: "prometheus.timeout", kind: kindDuration, def: "10s",
		usage: "Timeout of each query to Prometheus.",
		ptr:   func(c *Config) any { return &c.Prometheus.Timeout }},
	{key: "prometheus.max-response-bytes", kind: kindBytes, def: "8MiB",
		usage: "Largest answer read from Prometheus (bytes, or with a unit: 64MiB); a larger one is refused as a bad result, so a misbehaving backend cannot exhaust memory.",
		ptr:   func(c *Config) any { return &c.Prometheus.MaxResponseBytes }},
	{key: "prometheus.headers", kind: kindHeaders,
		usage: "Extra HTTP header sent with every query, as Name=Value (e.g. X-Scope-OrgID=tenant1); repeatable or comma-separated.",
		ptr:   func(c *Config) any { return &c.Prometheus.Headers }},
	{key: "prometheus.http", kind: kindHTTP,
		usage: "config file only: prometheus/common HTTP client settings (basic_auth, authorization, oauth2, tls_config, proxy_url, ...).",
		ptr:   func(c *Config) any { return &c.Prometheus.HTTP }},

	{key: "alertmanager.urls", kind: kindStrings,
		usage: "Alertmanager base URL to send alerts to; repeatable or comma-separated, one per HA peer. None: no alerts are sent.",
		ptr:   func(c *Config) any { return &c.Alertmanager.URLs }},
	{key: "alertmanager.resend-delay", kind: kindDuration, def: "1m",
		usage: "How often firing alerts are sent again, so that Alertmanager does not resolve them.",
		ptr:   func(c *Config) any { return &c.Alertmanager.ResendDelay }},
	{key: "alertmanager.timeout", kind: kindDuration, def: "10s",
		usage: "Timeout of each request to Alertmanager.",
		ptr:   func(c *Config) any { return &c.Alertmanager.Timeout }},
	{key: "alertmanager.queue-capacity", kind: kindInt, def: "10000",
		usage: "Alerts queued while Alertmanager is unreachable; the oldest are dropped beyond this.",
		ptr:   func(c *Config) any { return &c.Alertmanager.QueueCapacity }},

	{key: "evaluation.interval", kind: kindDuration, def: "30s",
		usage: "How often every SLO and hypothesis is evaluated (at least 1s).",
		ptr:   func(c *Config) any { return &c.Evaluation.Interval }},
	{key: "evaluation.max-concurrency", kind: kindInt, def: "8",
		usage: "Queries in flight to Prometheus at most.",
		ptr:   func(c *Config) any { return &c.Evaluation.MaxConcurrency }},
	{key: "evaluation.forecast-window", kind: kindDuration, def: "1d",
		usage: "Window whose burn rate the error budget forecasts assume goes on (one of 5m, 30m, 1h, 2h, 6h, 1d, 3d).",
		ptr:   func(c *Config) any { return &c.Evaluation.ForecastWindow }},
	{key: "evaluation.min-range", kind: kindDuration, def: "2m",
		usage: "Shortest range of the rate() that measures one slice; at least twice the scrape interval of the SLO metrics.",
		ptr:   func(c *Config) any { return &c.Evaluation.MinRange }},

	{key: "definitions", kind: kindStrings, path: true,
		usage: "SLO, hypothesis and experiment definitions: file, directory or glob; repeatable or comma-separated. Required.",
		ptr:   func(c *Config) any { return &c.Definitions }},
	{key: "reload.allow-empty", kind: kindBool, def: "false",
		usage: "Accept a reload (SIGHUP, POST /-/reload, a changed file) whose definitions define no SLO, hypothesis or experiment. Off: such a reload is refused and the definitions in force stay, since applying it would abort every active run. An empty set is always accepted at start.",
		ptr:   func(c *Config) any { return &c.Reload.AllowEmpty }},
	{key: "sloth.default-period", kind: kindDuration, def: "30d",
		usage: "SLO window of Sloth SLOs, whose specs have none (Sloth's --default-slo-period); Sloth AlertWindows of this period apply to them.",
		ptr:   func(c *Config) any { return &c.Sloth.DefaultPeriod }},

	{key: "web.listen-address", kind: kindString, def: ":8080",
		usage: "Address of the HTTP listener (API, UI, /metrics).",
		ptr:   func(c *Config) any { return &c.Web.ListenAddress }},
	{key: "web.config-file", kind: kindString, path: true,
		usage: "exporter-toolkit web configuration file enabling TLS and/or basic auth.",
		ptr:   func(c *Config) any { return &c.Web.ConfigFile }},
	{key: "web.api-token-file", kind: kindString, path: true,
		usage: "File holding a bearer token required on mutating API endpoints (runs, reload). Empty: no token required.",
		ptr:   func(c *Config) any { return &c.Web.APITokenFile }},
	{key: "web.max-body-bytes", kind: kindBytes, def: "1MiB",
		usage: "Largest request body the API accepts (bytes, or with a unit: 512KiB, 1MiB).",
		ptr:   func(c *Config) any { return &c.Web.MaxBodyBytes }},
	{key: "web.enable-pprof", kind: kindBool, def: "false",
		usage: "Serve Go's profiles under /debug/pprof/ (heap, CPU, goroutines), behind the web config's basic auth if any: for finding where memory or CPU goes. Off: 404.",
		ptr:   func(c *Config) any { return &c.Web.EnablePprof }},
	{key: "web.external-url", kind: kindString,
		usage: "URL under which slogate is reachable by users, used in alert links. Empty: derived from the listen address.",
		ptr:   func(c *Config) any { return &c.Web.ExternalURL }},
	{key: "web.dashboard-url", kind: kindString,
		usage: "Grafana base URL put into alert annotations as a dashboard link. Empty: no link.",
		ptr:   func(c *Config) any { return &c.Web.DashboardURL }},

	{key: "storage.path", kind: kindString, def: "data/", path: true,
		usage: "Directory of the embedded database holding chaos runs and their verdict timelines.",
		ptr:   func(c *Config) any { return &c.Storage.Path }},
	{key: "storage.url", kind: kindString,
		usage: "PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full) of a store shared by replicas: runs, timelines, the supervision lease and shards' SLO statuses. Empty: the embedded database under storage.path (one replica). The password comes from storage.password-file or the PG* environment variables, never the logs.",
		ptr:   func(c *Config) any { return &c.Storage.URL }},
	{key: "storage.password-file", kind: kindString, path: true,
		usage: "File holding the PostgreSQL password for storage.url.",
		ptr:   func(c *Config) any { return &c.Storage.PasswordFile }},
	{key: "storage.replica", kind: kindString,
		usage: "This replica's name in leases and run records. Empty: the host name and process ID (a pod's name in Kubernetes).",
		ptr:   func(c *Config) any { return &c.Storage.Replica }},

	{key: "log.level", kind: kindString, def: "info",
		usage: "Only log messages with this severity or above: debug, info, warn, error.",
		ptr:   func(c *Config) any { return &c.Log.Level }},
	{key: "log.format", kind: kindString, def: "console",
		usage: "Log format: console (human-readable) or json (for log collectors).",
		ptr:   func(c *Config) any { return &c.Log.Format }},

	{key: "shard.index", kind: kindInt, def: "0",
		usage: "This replica's shard, 0 <= index < shard.count; SLOs are split by a hash of their name.",
		ptr:   func(c *Config) any { return &c.Shard.Index }},
	{key: "shard.count", kind: kindInt, def: "1",
		usage: "Number of shards the SLOs are split into.",
		ptr:   func(c *Config) any { return &c.Shard.Count }},
}

// fieldByKey finds a field of the table.
func fieldByKey(key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// viaViper says whether the key is merged by viper (all but the map-valued ones).
func (f field) viaViper() bool { return f.kind != kindHeaders && f.kind != kindHTTP }

// envVar is the environment variable of a key: SLOGATE_ and the key with
// '.' and '-' replaced by '_', upper-cased.
func envVar(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// set stores raw (as viper returns it: a string from a file, env var or
// default, an int or []string from a typed flag, []string from a file
// sequence) into the field. The error says what is wrong with the value,
// without the key: the caller adds the key and where the value came from.
func (f field) set(c *Config, raw any) error {
	switch p := f.ptr(c).(type) {
	case *string:
		s, err := scalarText(raw)
		if err != nil {
			return err
		}
		*p = s
	case *time.Duration:
		s, err := scalarText(raw)
		if err != nil {
			return err
		}
		d, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration", s)
		}
		*p = d
	case *int:
		if n, ok := raw.(int); ok {
			*p = n
			return nil
		}
		s, err := scalarText(raw)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = n
	case *int64:
		s, err := scalarText(raw)
		if err != nil {
			return err
		}
		n, err := parseBytes(s)
		if err != nil {
			return fmt.Errorf("%q is not a size in bytes (e.g. 1048576 or 1MiB)", s)
		}
		*p = n
	case *bool:
		if b, ok := raw.(bool); ok {
			*p = b
			return nil
		}
		s, err := scalarText(raw)
		if err != nil {
			return err
		}
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		*p = b
	case *[]string:
		switch v := raw.(type) {
		case []string:
			*p = compact(v)
		case string:
			// Environment variables and defaults: comma-separated, like the flag.
			*p = compact(strings.Split(v, ","))
		case nil:
			*p = nil
		default:
			return fmt.Errorf("expected a list of strings, got %T", raw)
		}
	default:
		panic(fmt.Sprintf("config: field %s has no decoder for %T", f.key, p))
	}
	return nil
}

// format renders the field's value the way set reads it back; used for the
// YAML dump and flag defaults.
func (f field) format(c *Config) any {
	switch p := f.ptr(c).(type) {
	case *string:
		return *p
	case *time.Duration:
		return slo.FormatDuration(*p)
	case *int:
		return *p
	case *int64:
		return units.Base2Bytes(*p).String()
	case *bool:
		return *p
	case *[]string:
		return *p
	}
	return nil
}

func scalarText(raw any) (string, error) {
	switch v := raw.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []string:
		return "", fmt.Errorf("expected a single value, got a list")
	}
	return "", fmt.Errorf("expected a single value, got %T", raw)
}

// compact trims the items and drops empty ones, so that "a, b," means [a b].
func compact(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseDuration accepts Prometheus durations (1d, 1w, 1h30m) as well as Go
// ones (1.5s, 250us): users of this tool write both.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return time.ParseDuration(s)
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	n, err := units.ParseBase2Bytes(s)
	return int64(n), err
}
