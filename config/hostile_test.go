package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// hostileDir holds config files written to break the loader; files too big
// to commit are generated below.
const hostileDir = "../testdata/hostile/config"

// loadGuarded runs Load on its own goroutine so that a panic fails the case
// with its stack and a hang ends the case. The bound is a hang guard, not a
// speed assertion: every case takes milliseconds.
func loadGuarded(t *testing.T, path string) (*Config, error) {
	t.Helper()
	type result struct {
		c     *Config
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p, stack: debug.Stack()}
			}
		}()
		c, err := Load(LoadOptions{File: path})
		done <- result{c: c, err: err}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("Load panicked: %v\n%s", r.panic, r.stack)
		}
		return r.c, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Load did not return within 10s")
		return nil, nil
	}
}

// TestHostileConfig: every problem of a hostile file is reported, each
// starting with file:line:col and naming the key, all at once.
func TestHostileConfig(t *testing.T) {
	tests := []struct {
		file string
		want []string // every line of the joined error, in order; FILE is the path
	}{
		{
			file: "unknown-keys.yaml",
			want: []string{
				`FILE:6:3: unknown key "prometheus.tiemout" (did you mean "prometheus.timeout"?)`,
				`FILE:12:3: unknown key "evaluation.intervals" (did you mean "evaluation.interval"?)`,
				`FILE:13:1: unknown key "storage.path" (keys nest in the file: write "storage:", then "path:" indented under it)`,
				`FILE:14:1: keys must be strings, got a list`,
				`FILE:15:1: unknown key "7"`,
				`FILE:16:1: unknown key ""`,
				`FILE:19:3: duplicate key "web.listen-address" (first set at line 18)`,
				`FILE:8:5: prometheus.http: unknown key "pasword"`,
			},
		},
		{
			file: "wrong-types.yaml",
			want: []string{
				`FILE:2:14: definitions: expected a list of strings, got a mapping`,
				`FILE:4:8: prometheus.url: expected a single value, got a list`,
				`FILE:5:12: prometheus.timeout: expected a single value, got a mapping`,
				`FILE:6:12: prometheus.headers: expected a mapping of header names to values, got a list`,
				`FILE:7:9: prometheus.http: expected a mapping of HTTP client settings, got "basic_auth"`,
				`FILE:9:10: alertmanager.urls: expected a string, got a list`,
				`FILE:14:6: web: expected a mapping of keys, got a list`,
				`FILE:16:10: log.level: expected a single value, got a mapping`,
				`FILE:18:8: shard: expected a mapping of keys, got "2"`,
				`FILE:10:17: alertmanager.resend-delay: "true" is not a duration`,
				`FILE:12:13: evaluation.interval: "1.5" is not a duration`,
				`FILE:13:20: evaluation.max-concurrency: "eight" is not an integer`,
				`FILE:17:11: log.format: "42" is not one of console, json`,
			},
		},
		{
			file: "alias-bomb.yaml",
			want: []string{
				`FILE:9:1: unknown key "laughs"`,
				// The alias is reported where the list it names starts.
				`FILE:17:7: alertmanager.urls: expected a string, got a list`,
				`FILE:11:12: anchors and aliases expand to too much data (document contains excessive aliasing)`,
			},
		},
		{
			file: "invalid-utf8.yaml",
			want: []string{`FILE:4:12: byte 0xe9 is not valid UTF-8`},
		},
		{
			file: "nul-byte.yaml",
			want: []string{`FILE:4:31: control character U+0000 is not allowed`},
		},
	}
	files, err := filepath.Glob(filepath.Join(hostileDir, "*.yaml"))
	if err != nil || len(files) != len(tests) {
		t.Fatalf("%d files in %s, %d cases: %v", len(files), hostileDir, len(tests), err)
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			cleanEnv(t)
			path := filepath.Join(hostileDir, tt.file)
			c, err := loadGuarded(t, path)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.Replace(w, "FILE", path, 1)
			}
			assertErrorLines(t, c, err, want)
		})
	}
}

// TestHostileConfigGenerated covers files too big to commit.
func TestHostileConfigGenerated(t *testing.T) {
	deepBlock := func() string {
		var b strings.Builder
		b.WriteString("definitions: [defs/]\nprometheus:\n  http:\n")
		for i := range 300 {
			fmt.Fprintf(&b, "%sa%d:\n", strings.Repeat("  ", i+2), i)
		}
		return b.String()
	}
	tests := []struct {
		name    string
		content string
		want    []string // FILE is the path
	}{
		{
			// Valid YAML all the way: only the size is wrong. It is
			// refused before it is parsed.
			name:    "larger than 8 MiB",
			content: "definitions: [defs/]\n" + strings.Repeat("# padding\n", 900000),
			want:    []string{`FILE: the config file is larger than 1 MiB; slogate's configuration is expected to be small`},
		},
		{
			name:    "just over the limit",
			content: "definitions:\n" + strings.Repeat("- defs/\n", MaxFileSize/8+1),
			want:    []string{`FILE: the config file is larger than 1 MiB; slogate's configuration is expected to be small`},
		},
		{
			name:    "flow nesting beyond the YAML parser's limit",
			content: "definitions: [defs/]\nprometheus: " + strings.Repeat("{a: ", 20000) + strings.Repeat("}", 20000) + "\n",
			want:    []string{`FILE:2: exceeded max depth of 10000`},
		},
		{
			name:    "deep block nesting in prometheus.http",
			content: deepBlock(),
			want:    []string{`FILE:4:5: prometheus.http: unknown key "a0"`},
		},
		{
			name:    "deep flow nesting in prometheus.http",
			content: "definitions: [defs/]\nprometheus:\n  http: " + strings.Repeat("{a: ", 5000) + strings.Repeat("}", 5000) + "\n",
			want:    []string{`FILE:3:9: prometheus.http: unknown key "a"`},
		},
		{
			name:    "a control character in a key",
			content: "definitions: [defs/]\nlog:\n  le\x1bvel: debug\n",
			want:    []string{`FILE:3:5: control character U+001B is not allowed`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			path := filepath.Join(t.TempDir(), "slogate.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := loadGuarded(t, path)
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.Replace(w, "FILE", path, 1)
			}
			assertErrorLines(t, c, err, want)
		})
	}
}

// TestHostileConfigJustUnderTheLimit: the largest file accepted still loads
// in bounded time (a list of definitions paths is the most a real config
// file could grow).
func TestHostileConfigJustUnderTheLimit(t *testing.T) {
	cleanEnv(t)
	var b bytes.Buffer
	b.WriteString("definitions:\n")
	for b.Len()+len("- d\n") <= MaxFileSize {
		b.WriteString("- d\n")
	}
	path := filepath.Join(t.TempDir(), "slogate.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadGuarded(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Definitions); n != (MaxFileSize-len("definitions:\n"))/4 {
		t.Errorf("%d definitions paths", n)
	}
}
