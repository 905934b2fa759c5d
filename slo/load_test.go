package slo

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .expected files of testdata/definitions/bad")

const definitions = "../testdata/definitions"

// TestLoadGoodDefinitions loads the good fixtures and the examples, each
// directory as one set: no error, no warning.
func TestLoadGoodDefinitions(t *testing.T) {
	tests := []struct {
		name, dir, summary string
	}{
		{"good fixtures", filepath.Join(definitions, "good"), "9 SLOs, 2 hypotheses, 3 experiments; 0 errors, 0 warnings"},
		{"examples", "../examples/definitions", "8 SLOs, 5 hypotheses, 3 experiments; 0 errors, 0 warnings"},
		{"calendar example", "../examples/calendar", "2 SLOs, 0 hypotheses, 0 experiments; 0 errors, 0 warnings"},
		{"time-slice example", "../examples/timeslices", "3 SLOs, 0 hypotheses, 0 experiments; 0 errors, 0 warnings"},
		{"per-group example", "../examples/groups", "2 SLOs, 0 hypotheses, 1 experiment; 0 errors, 0 warnings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := Load(tt.dir)
			if len(diags) != 0 {
				t.Fatalf("diagnostics:\n%s", diags)
			}
			if got := Summarize(set, diags).String(); got != tt.summary {
				t.Errorf("summary = %q, want %q", got, tt.summary)
			}
		})
	}
}

// TestLoadBadFixtures loads each bad fixture on its own and compares every
// diagnostic, exactly, with the .expected file next to it.
func TestLoadBadFixtures(t *testing.T) {
	dir := filepath.Join(definitions, "bad")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad fixtures: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			_, diags := LoadFS(os.DirFS(dir), name)
			if !diags.HasErrors() && len(diags.Warnings()) == 0 {
				t.Fatalf("%s: no diagnostics", name)
			}
			got := diags.String()
			expected := file + ".expected"
			if *update {
				if err := os.WriteFile(expected, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(expected)
			if err != nil {
				t.Fatalf("%v (run go test ./slo -run TestLoadBadFixtures -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestLoadPaths(t *testing.T) {
	slo := func(name string) string {
		return "apiVersion: slogate.dev/v1\nkind: SLO\nmetadata: {name: " + name + "}\n" +
			"spec: {service: s, objective: 99, indicator: {raw: {errorRatio: 'avg_over_time(e[{{.window}}])'}}}\n"
	}
	fsys := fstest.MapFS{
		"defs/a.yaml":          {Data: []byte(slo("a"))},
		"defs/sub/b.yml":       {Data: []byte(slo("b"))},
		"defs/sub/notes.txt":   {Data: []byte("not yaml")},
		"defs/.git/c.yaml":     {Data: []byte(slo("c"))},
		"defs/dup.yaml":        {Data: []byte(slo("a"))},
		"other/x.yaml":         {Data: []byte(slo("x"))},
		"other/y.yaml":         {Data: []byte(slo("y"))},
		"empty/readme.md":      {Data: []byte("#")},
		"plain/definitions.ts": {Data: []byte(slo("z"))},
	}
	tests := []struct {
		name  string
		paths []string
		slos  []string
		diags string
	}{
		{
			name:  "directory recursively, sorted, skipping dot directories",
			paths: []string{"defs"},
			slos:  []string{"a", "a", "b"},
			diags: "defs/dup.yaml:3:18: error: SLO \"a\" is already defined at defs/a.yaml:3:18\n",
		},
		{name: "glob", paths: []string{"other/*.yaml"}, slos: []string{"x", "y"}},
		{name: "a file whatever its extension", paths: []string{"plain/definitions.ts"}, slos: []string{"z"}},
		{name: "a file listed twice is read once", paths: []string{"other/x.yaml", "other/x.yaml", "other"}, slos: []string{"x", "y"}},
		{name: "missing path", paths: []string{"nope.yaml"}, diags: "nope.yaml: error: no such file or directory\n"},
		{name: "glob matching nothing", paths: []string{"nope/*.yaml"}, diags: "nope/*.yaml: error: no file matches the pattern\n"},
		{name: "directory without definitions", paths: []string{"empty"}, diags: "empty: warning: no definition files (*.yaml, *.yml) in this directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, diags := LoadFS(fsys, tt.paths...)
			if got := diags.String(); got != tt.diags {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", got, tt.diags)
			}
			var names []string
			for _, o := range set.SLOs {
				names = append(names, o.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.slos, ",") {
				t.Errorf("SLOs = %v, want %v", names, tt.slos)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	set, diags := LoadBytes("d.yaml", []byte(`
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: s}
spec: {service: s, objective: 99.9, indicator: {raw: {errorRatio: "avg_over_time(e[{{ .window }}])"}}}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: h}
spec: {probes: [{name: p, query: up, tolerance: "> 0"}]}
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: e}
spec: {hypotheses: [h]}
`))
	if len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	o, h, e := set.SLO("s"), set.Hypothesis("h"), set.Experiment("e")
	checks := []struct {
		name      string
		got, want any
	}{
		{"window", o.Window, 30 * 24 * time.Hour},
		{"placeholder normalised", o.Indicator.Raw.ErrorRatio, "avg_over_time(e[{{.window}}])"},
		{"alerting enabled", o.Alerting.Enabled, true},
		{"alert name", o.Alerting.Name, DefaultAlertName},
		{"page enabled", o.Alerting.Page.Enabled, true},
		{"ticket enabled", o.Alerting.Ticket.Enabled, true},
		{"burn rate window", o.Gate.BurnRateWindow, time.Hour},
		{"no budget check", o.Gate.MinBudgetRemaining == nil, true},
		{"no burn check", o.Gate.MaxBurnRate == nil, true},
		{"pos", o.Pos, Pos{File: "d.yaml", Line: 2, Col: 1}},
		{"failAfter", h.FailAfter, 1},
		{"passAfter", h.PassAfter, 1},
		{"onNoData", h.OnNoData, PolicyUnknown},
		{"onError", h.OnError, PolicyUnknown},
		{"series", h.Series, SeriesAll},
		{"tolerance", *h.Probes[0].Tolerance, Tolerance{Op: OpGT, Value: 0}},
		{"recovery", e.Recovery, time.Duration(0)},
		{"maxBudgetSpend", e.MaxBudgetSpend, 0.0},
		{"onUnknown", e.OnUnknown, GateClosed},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadGuards(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	bomb := "apiVersion: slogate.dev/v1\nkind: SLO\nmetadata: {name: b}\nspec:\n  service: s\n  objective: 99\n" +
		"  indicator: {raw: {errorRatio: 'avg_over_time(e[{{.window}}])'}}\n" +
		"  alerting:\n    labels: &l {a: x}\n    page: {labels: *l}\n"
	// Many documents each dereferencing the anchor-free alias chain would
	// be cheap; what must be bounded is the number of dereferences.
	var many strings.Builder
	many.WriteString("apiVersion: slogate.dev/v1\nkind: Experiment\nmetadata: {name: m}\nspec:\n  slos: &s [a]\n  hypotheses: [")
	for i := range maxAliases + 10 {
		if i > 0 {
			many.WriteString(", ")
		}
		many.WriteString("*s")
	}
	many.WriteString("]\n")
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"too large", make([]byte, MaxFileSize+1), "big.yaml:1:1: error: file is larger than 8 MiB; definition files are expected to be small"},
		{"too deep", []byte(deep), "big.yaml:1:66: error: the document nests deeper than 64 levels"},
		{"aliases are followed", []byte(bomb), ""},
		{"too many aliases", []byte(many.String()), "error: more than 10000 alias references in one file; refusing to expand them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := LoadBytes("big.yaml", tt.data)
			got := diags.String()
			if tt.want == "" && got != "" {
				t.Fatalf("unexpected diagnostics:\n%s", got)
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("diagnostics:\n%s\nwant them to contain %q", got, tt.want)
			}
		})
	}
}

func TestLoadCapsProblemsPerFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: slogate.dev/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n")
	for i := range maxProblemsPerFile + 5 {
		b.WriteString("  unknown_" + strconv.Itoa(i) + ": 1\n")
	}
	_, diags := LoadBytes("many.yaml", []byte(b.String()))
	if len(diags) != maxProblemsPerFile+1 {
		t.Fatalf("%d diagnostics, want %d", len(diags), maxProblemsPerFile+1)
	}
	last := diags[len(diags)-1]
	if want := "8 more problems in this file are not shown"; last.Message != want {
		t.Errorf("last diagnostic %q, want %q", last.Message, want)
	}
}
