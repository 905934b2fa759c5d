package config

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	commoncfg "github.com/prometheus/common/config"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix starts the environment variable of every key.
const EnvPrefix = "SLOGATE_"

// ConfigFlag is the flag (and, as SLOGATE_CONFIG, the variable) naming the
// YAML file.
const ConfigFlag = "config"

// LoadOptions are the inputs of Load besides the process environment.
type LoadOptions struct {
	// File is the YAML file. Empty: the --config flag of Flags, else
	// SLOGATE_CONFIG, else no file (defaults, environment and flags only).
	File string
	// Flags, if not nil, holds flags defined by RegisterFlags (or a subset
	// of them); only those the user set override anything.
	Flags *pflag.FlagSet
}

// RegisterFlags defines --config (unless fs already has it, e.g. from a
// command that defines it for all subcommands) and a flag for every key
// except prometheus.http, which has too many parts for flags and is read
// from the file only.
func RegisterFlags(fs *pflag.FlagSet) {
	if fs.Lookup(ConfigFlag) == nil {
		fs.String(ConfigFlag, "", "YAML configuration file (also "+EnvPrefix+"CONFIG). Flags override "+EnvPrefix+"* variables, which override the file.")
	}
	for _, f := range fields {
		usage := f.usage + " (env " + envVar(f.key) + ")"
		switch f.kind {
		case kindString:
			fs.String(f.key, f.def, usage)
		case kindInt:
			n, _ := strconv.Atoi(f.def) // the table's defaults are checked by TestDefaults
			fs.Int(f.key, n, usage)
		case kindDuration:
			fs.Var(newTextValue(f.def, "duration", func(s string) error {
				if _, err := parseDuration(s); err != nil {
					return errors.New("not a duration (e.g. 30s, 5m, 1h30m, 1d)")
				}
				return nil
			}), f.key, usage)
		case kindBytes:
			fs.Var(newTextValue(f.def, "bytes", func(s string) error {
				if _, err := parseBytes(s); err != nil {
					return errors.New("not a size in bytes (e.g. 1048576 or 1MiB)")
				}
				return nil
			}), f.key, usage)
		case kindBool:
			b, _ := strconv.ParseBool(f.def) // a bad default panics in Default (TestDefault)
			fs.Bool(f.key, b, usage)
		case kindStrings:
			fs.StringSlice(f.key, nil, usage)
		case kindHeaders:
			fs.Var(&headersValue{}, f.key, usage)
		}
	}
}

// textValue is a flag holding text that is checked when set but converted by
// Load, so that "1d" is a valid duration on the command line as in the file,
// and the help shows the default as written ("30s", "1MiB").
type textValue struct {
	s     string
	typ   string
	check func(string) error
}

func newTextValue(def, typ string, check func(string) error) *textValue {
	return &textValue{s: def, typ: typ, check: check}
}

func (v *textValue) String() string { return v.s }
func (v *textValue) Type() string   { return v.typ }
func (v *textValue) Set(s string) error {
	if err := v.check(s); err != nil {
		return err
	}
	v.s = s
	return nil
}

// headersValue collects Name=Value pairs; the flag can be repeated.
type headersValue struct {
	m   map[string]string
	raw []string
}

func (v *headersValue) String() string { return strings.Join(v.raw, ",") }
func (v *headersValue) Type() string   { return "name=value" }
func (v *headersValue) Set(s string) error {
	m, err := parseHeaders(s)
	if err != nil {
		return err
	}
	if v.m == nil {
		v.m = map[string]string{}
	}
	for k, val := range m {
		v.m[k] = val
	}
	v.raw = append(v.raw, s)
	return nil
}

// parseHeaders reads comma-separated Name=Value pairs; a pair containing a
// comma can be double-quoted, as in CSV.
func parseHeaders(s string) (map[string]string, error) {
	r := csv.NewReader(strings.NewReader(s))
	r.LazyQuotes = true
	r.TrimLeadingSpace = true
	items, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%q is not a list of Name=Value: %w", s, err)
	}
	m := make(map[string]string, len(items))
	for _, it := range items {
		name, value, ok := strings.Cut(it, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not Name=Value", it)
		}
		m[name] = value
	}
	return m, nil
}

// originKind says which layer a value came from.
type originKind int

const (
	fromDefault originKind = iota
	fromFile
	fromEnv
	fromFlag
)

// origin is where a key's value came from.
type origin struct {
	kind      originKind
	name      string // file path, variable name or --flag
	line, col int
}

// annotate makes an error about key: file values are prefixed with
// file:line:col (like `slogate check` and compilers, so editors jump there),
// flag and environment values end with "(from ...)".
func (o origin) annotate(key, msg string) error {
	switch o.kind {
	case fromFile:
		return fmt.Errorf("%s:%d:%d: %s: %s", o.name, o.line, o.col, key, msg)
	case fromEnv, fromFlag:
		return fmt.Errorf("%s: %s (from %s)", key, msg, o.name)
	}
	return fmt.Errorf("%s: %s", key, msg)
}

// Load merges defaults, the file, the environment and the flags (in rising
// precedence), decodes and validates the result. The error joins every
// problem found: unknown keys, unparsable values and invalid settings.
//
// Relative paths written in the file (definitions, web.config-file,
// web.api-token-file, storage.path and the file paths of prometheus.http)
// are relative to the file's directory, as in Prometheus; relative paths
// from flags and variables are relative to the working directory.
func Load(opts LoadOptions) (*Config, error) {
	path := opts.File
	if path == "" && opts.Flags != nil {
		if f := opts.Flags.Lookup(ConfigFlag); f != nil {
			path = f.Value.String()
		}
	}
	if path == "" {
		path = os.Getenv(EnvPrefix + "CONFIG")
	}

	var errs []error
	file := &fileValues{}
	if path != "" {
		var ferrs []error
		file, ferrs = readFile(path)
		if file.unreadable {
			return nil, errors.Join(ferrs...)
		}
		errs = append(errs, ferrs...)
	}

	// A private viper instance: the global one would leak state between
	// loads (reload, tests).
	v := viper.New()
	if err := v.MergeConfigMap(file.viperMap()); err != nil {
		return nil, fmt.Errorf("merge config file %s: %w", path, err)
	}
	for _, f := range fields {
		if !f.viaViper() {
			continue
		}
		v.SetDefault(f.key, f.def)
		if err := v.BindEnv(f.key, envVar(f.key)); err != nil {
			return nil, fmt.Errorf("bind %s: %w", envVar(f.key), err)
		}
		if opts.Flags != nil {
			if fl := opts.Flags.Lookup(f.key); fl != nil {
				if err := v.BindPFlag(f.key, fl); err != nil {
					return nil, fmt.Errorf("bind --%s: %w", f.key, err)
				}
			}
		}
	}

	c := &Config{origins: map[string]origin{}}
	failed := map[string]bool{}
	for _, f := range fields {
		o := originOf(f, opts.Flags, file)
		c.origins[f.key] = o
		var err error
		switch f.kind {
		case kindHeaders:
			err = loadHeaders(c, o, opts.Flags, file)
		case kindHTTP:
			c.Prometheus.HTTP = commoncfg.DefaultHTTPClientConfig
			if file.http != nil {
				c.Prometheus.HTTP = *file.http
				c.Prometheus.HTTP.SetDirectory(filepath.Dir(path))
			}
		default:
			err = f.set(c, v.Get(f.key))
			if err == nil && f.path && o.kind == fromFile {
				relativize(f.ptr(c), filepath.Dir(path))
			}
		}
		if err != nil {
			errs = append(errs, o.annotate(f.key, err.Error()))
			failed[f.key] = true
		}
	}
	// Values the file got wrong were reported by readFile.
	for key := range file.failed {
		failed[key] = true
	}

	for _, p := range c.problems() {
		// A key whose value could not be decoded kept its default, which
		// would only produce a confusing second error.
		if !failed[p.key] {
			errs = append(errs, c.origins[p.key].annotate(p.key, p.msg))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// originOf mirrors viper's precedence (flag set by the user, non-empty
// variable, file, default) to name the layer a value was taken from.
func originOf(f field, flags *pflag.FlagSet, file *fileValues) origin {
	if flags != nil {
		if fl := flags.Lookup(f.key); fl != nil && fl.Changed {
			return origin{kind: fromFlag, name: "--" + f.key}
		}
	}
	if f.kind != kindHTTP {
		if s, ok := os.LookupEnv(envVar(f.key)); ok && s != "" {
			return origin{kind: fromEnv, name: envVar(f.key)}
		}
	}
	if n, ok := file.nodes[f.key]; ok {
		return origin{kind: fromFile, name: file.path, line: n.Line, col: n.Column}
	}
	return origin{kind: fromDefault}
}

// loadHeaders applies the same precedence as viper, by hand, so that header
// names keep their case.
func loadHeaders(c *Config, o origin, flags *pflag.FlagSet, file *fileValues) error {
	switch o.kind {
	case fromFlag:
		hv, ok := flags.Lookup("prometheus.headers").Value.(*headersValue)
		if !ok {
			return errors.New("the flag was not defined by config.RegisterFlags")
		}
		c.Prometheus.Headers = hv.m
	case fromEnv:
		m, err := parseHeaders(os.Getenv(envVar("prometheus.headers")))
		c.Prometheus.Headers = m
		return err
	case fromFile:
		c.Prometheus.Headers = file.headers
	}
	return nil
}

// relativize joins relative paths with dir.
func relativize(p any, dir string) {
	switch p := p.(type) {
	case *string:
		*p = commoncfg.JoinDir(dir, *p)
	case *[]string:
		*p = slices.Clone(*p)
		for i := range *p {
			(*p)[i] = commoncfg.JoinDir(dir, (*p)[i])
		}
	}
}
