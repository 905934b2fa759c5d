package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/check")

// TestCheckGolden runs `slogate check` in process and compares its output
// with testdata/check/<name>.golden; paths are printed as given, so the
// golden files hold the relative paths below.
func TestCheckGolden(t *testing.T) {
	const defs = "../../testdata/definitions"
	tests := []struct {
		name     string
		args     []string
		exitCode int
	}{
		{name: "good", args: []string{defs + "/good"}},
		{name: "bad", args: []string{defs + "/bad"}, exitCode: 1},
		{name: "warnings-only", args: []string{defs + "/bad/objective-ratio.yaml"}},
		{name: "json", args: []string{"--output", "json", defs + "/bad/objective-ratio.yaml", defs + "/bad/unknown-field.yaml"}, exitCode: 1},
		{name: "json-clean", args: []string{"-o", "json", defs + "/good/experiments.yaml", defs + "/good/hypotheses.yaml", defs + "/good/slos.yaml"}},
		{name: "missing-path", args: []string{defs + "/nope.yaml", defs + "/good/slos.yaml"}, exitCode: 1},
		{name: "examples", args: []string{"../../examples/definitions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCheck(t, tt.args...)
			if code != tt.exitCode {
				t.Errorf("exit code %d, want %d\n%s", code, tt.exitCode, out)
			}
			golden := filepath.Join("..", "..", "testdata", "check", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (refresh with go test ./cmd/slogate -run TestCheckGolden -update)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", golden, out, want)
			}
		})
	}
}

func TestCheckJSONShape(t *testing.T) {
	out, _ := runCheck(t, "-o", "json", "../../testdata/definitions/bad/objective-ratio.yaml")
	var report struct {
		Summary  map[string]int `json:"summary"`
		Problems []struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Col      int    `json:"col"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	want := map[string]int{"slos": 1, "hypotheses": 0, "experiments": 0, "errors": 0, "warnings": 1}
	for k, v := range want {
		if report.Summary[k] != v {
			t.Errorf("summary[%s] = %d, want %d", k, report.Summary[k], v)
		}
	}
	if len(report.Problems) != 1 || report.Problems[0].Line != 7 || report.Problems[0].Severity != "warning" {
		t.Errorf("problems = %+v", report.Problems)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "no path", args: nil},
		{name: "unknown output", args: []string{"-o", "xml", "x.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRootCmd()
			cmd.SetArgs(append([]string{"check"}, tt.args...))
			cmd.SetOut(new(bytes.Buffer))
			cmd.SetErr(new(bytes.Buffer))
			err := cmd.Execute()
			if err == nil {
				t.Fatal("no error")
			}
			if exitCode(err) != 1 || err.Error() == "" {
				t.Errorf("err = %v (exit %d), want a message and exit 1", err, exitCode(err))
			}
		})
	}
}

// runCheck runs `slogate check args...` and returns its stdout and exit code.
func runCheck(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"check"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	code := 0
	if err != nil {
		code = exitCode(err)
		var e *exitError
		if !asExitError(err, &e) || e.err != nil {
			t.Fatalf("check failed with a message instead of a report: %v", err)
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr: %s", errOut.String())
	}
	return out.Bytes(), code
}

func asExitError(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	if ok {
		*target = e
	}
	return ok
}

// TestCheckJSONReportsFormats: the JSON report names each definition's
// source format, and a Sloth SLO's name in its Sloth spec.
func TestCheckJSONReportsFormats(t *testing.T) {
	out, code := runCheck(t, "-o", "json", "../../testdata/definitions/migrate", "../../testdata/definitions/good/slos.yaml")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var report struct {
		Definitions []struct {
			Kind, Name, Format, SourceName string
		} `json:"definitions"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range report.Definitions {
		got[d.Name] = d.Format + " " + d.SourceName
	}
	for name, want := range map[string]string{
		"Checkout-requests-availability": "sloth.slok.dev/v1 PrometheusServiceLevel requests-availability",
		"search-latency":                 "sloth prometheus/v1 latency",
		"api-availability-1":             "openslo/v1alpha ",
		"orders-availability-0":          "openslo/v1 ",
		"checkout-availability":          "slogate.dev/v1 ",
	} {
		if got[name] != want {
			t.Errorf("%s: format and source name %q, want %q", name, got[name], want)
		}
	}
}
