package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

func TestRulesCommand(t *testing.T) {
	const defs = "../../testdata/definitions"
	set, diags := slo.Load(defs + "/good")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	windows, err := rules.Render(set, rules.Options{Style: rules.StyleWindows})
	if err != nil {
		t.Fatal(err)
	}
	sloth, err := rules.Render(set, rules.Options{Style: rules.StyleSloth})
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := rules.Render(set, rules.Options{Style: rules.StyleBuckets})
	if err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(t.TempDir(), "out.yml")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []byte
		stderrHas  string
		file       []byte
		noStdout   bool
		stderrNone bool
	}{
		{name: "default style to stdout", args: []string{"rules", defs + "/good"}, stdout: windows, stderrNone: true},
		{name: "buckets", args: []string{"rules", "--style", "buckets", defs + "/good"}, stdout: buckets},
		{name: "sloth", args: []string{"rules", "--style", "sloth", defs + "/good"}, stdout: sloth},
		{name: "to a file", args: []string{"rules", "-o", outFile, defs + "/good"}, file: windows, noStdout: true},
		{name: "errors in the definitions", args: []string{"rules", defs + "/bad/bad-promql.yaml"}, code: 1, noStdout: true,
			stderrHas: "bad-promql.yaml:"},
		{name: "warnings go to stderr", args: []string{"rules", defs + "/bad/objective-ratio.yaml"}, stderrHas: "warning:"},
		{name: "unknown style", args: []string{"rules", "--style", "pyrra", defs + "/good"}, code: 1, noStdout: true,
			stderrHas: `unknown style "pyrra"; use windows, sloth or buckets`},
		{name: "hypotheses are ignored", args: []string{"rules", defs + "/good/hypotheses.yaml", defs + "/good/slos.yaml"}, stderrNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := execute(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			if tt.stdout != nil && !bytes.Equal(stdout.Bytes(), tt.stdout) {
				t.Errorf("stdout differs from rules.Render:\n%s", stdout.String())
			}
			if tt.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout not empty:\n%s", stdout.String())
			}
			if tt.stderrHas != "" && !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.stderrHas)
			}
			if tt.stderrNone && stderr.Len() > 0 {
				t.Errorf("stderr not empty: %s", stderr.String())
			}
			if tt.file != nil {
				got, err := os.ReadFile(outFile)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.file) {
					t.Errorf("--output file differs from rules.Render:\n%s", got)
				}
				if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(outFile), ".out.yml.*")); len(matches) > 0 {
					t.Errorf("temporary files left behind: %v", matches)
				}
			}
		})
	}
}
