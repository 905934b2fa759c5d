package main

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/slogate/slogate/slo"
)

// runConvert runs `slogate convert args...` in process.
func runConvert(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"convert"}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		code = exitCode(err)
		var e *exitError
		if !asExitError(err, &e) || e.err != nil {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

// sameModel compares what the evaluator would see: definitions sorted by
// name (a directory of converted files loads in another order), positions
// and source formats ignored, an empty map equal to none.
func sameModel(t *testing.T, want, got *slo.Set) {
	t.Helper()
	byName := func(s *slo.Set) *slo.Set {
		c := *s
		c.SLOs = slices.SortedFunc(slices.Values(s.SLOs), func(a, b *slo.SLO) int { return cmp.Compare(a.Name, b.Name) })
		c.Hypotheses = slices.SortedFunc(slices.Values(s.Hypotheses), func(a, b *slo.Hypothesis) int { return cmp.Compare(a.Name, b.Name) })
		c.Experiments = slices.SortedFunc(slices.Values(s.Experiments), func(a, b *slo.Experiment) int { return cmp.Compare(a.Name, b.Name) })
		return &c
	}
	if diff := gocmp.Diff(byName(want), byName(got), cmpopts.IgnoreTypes(slo.Pos{}, slo.Source{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("converted definitions differ (-original +converted):\n%s", diff)
	}
}

// TestConvertRoundTrip converts the good fixtures and the examples (native,
// Sloth and OpenSLO) to stdout and to a directory; the output passes
// `slogate check` and loads into the same definitions.
func TestConvertRoundTrip(t *testing.T) {
	inputs := map[string][]string{
		"good fixtures": {"../../testdata/definitions/good"},
		"examples":      {"../../examples/definitions"},
		"sloth only":    {"../../examples/definitions/sloth/search.yaml"},
		"openslo only":  {"../../examples/definitions/openslo"},
		// Sloth's resource, its plugins and spellings, OpenSLO v1alpha and
		// several objectives: they load with warnings only.
		"migrations": {"../../testdata/definitions/migrate"},
	}
	for name, paths := range inputs {
		t.Run(name, func(t *testing.T) {
			want, diags := slo.Load(paths...)
			if diags.HasErrors() {
				t.Fatalf("fixture:\n%s", diags)
			}

			t.Run("stdout", func(t *testing.T) {
				stdout, stderr, code := runConvert(t, paths...)
				if code != 0 || !onlyWarnings(stderr) {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr)
				}
				file := filepath.Join(t.TempDir(), "converted.yaml")
				if err := os.WriteFile(file, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				checkClean(t, file)
				got, _ := slo.Load(file)
				sameModel(t, want, got)
			})

			t.Run("directory", func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "out")
				_, stderr, code := runConvert(t, append([]string{"--output", dir}, paths...)...)
				if code != 0 {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr)
				}
				if !strings.Contains(stderr, " -> "+dir) {
					t.Errorf("stderr does not list the files written:\n%s", stderr)
				}
				checkClean(t, dir)
				got, _ := slo.Load(dir)
				sameModel(t, want, got)
			})
		})
	}
}

// checkClean runs `slogate check` on path: no error, no warning.
func checkClean(t *testing.T, path string) {
	t.Helper()
	out, code := runCheck(t, path)
	if code != 0 || !strings.Contains(string(out), "0 errors, 0 warnings") {
		t.Errorf("slogate check %s: exit %d\n%s", path, code, out)
	}
}

// TestConvertDirectoryLayout: one output file per input file, named like
// it, holding what that file declared, with a header naming the source.
func TestConvertDirectoryLayout(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runConvert(t, "-o", dir, "../../examples/definitions")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"baselines.yaml", "cart.yaml", "catalog.yaml", "checkout.yaml", "experiments.yaml", "search.yaml"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "search.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, part := range []string{
		"# Converted by slogate convert from ../../examples/definitions/sloth/search.yaml\n",
		"apiVersion: slogate.dev/v1\nkind: SLO\n",
		"name: search-requests-availability",
		"window: 30d",
	} {
		if !strings.Contains(s, part) {
			t.Errorf("search.yaml lacks %q:\n%s", part, s)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	t.Run("invalid definitions are reported, nothing is written", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		stdout, stderr, code := runConvert(t, "-o", dir, "../../testdata/definitions/bad/bad-promql.yaml")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if stdout != "" {
			t.Errorf("stdout: %q", stdout)
		}
		if !strings.Contains(stderr, "bad-promql.yaml:") || !strings.Contains(stderr, ": error: ") {
			t.Errorf("stderr does not show file:line:col: error: ...:\n%s", stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("output directory was created (%v)", err)
		}
	})
	t.Run("two inputs of the same name", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		def := "apiVersion: slogate.dev/v1\nkind: Hypothesis\nmetadata: {name: %s}\nspec:\n  probes: [{name: up, query: up, tolerance: '== 1'}]\n"
		if err := os.WriteFile(filepath.Join(a, "defs.yaml"), []byte(strings.Replace(def, "%s", "one", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b, "defs.yaml"), []byte(strings.Replace(def, "%s", "two", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		_, stderr, code := runConvert(t, "-o", out, filepath.Join(a, "defs.yaml"), filepath.Join(b, "defs.yaml"))
		if code != 1 || !strings.Contains(stderr, "would both be written to") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("output directory was created (%v)", err)
		}
	})
	t.Run("no path", func(t *testing.T) {
		if _, _, code := runConvert(t); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	})
	t.Run("empty output", func(t *testing.T) {
		_, stderr, code := runConvert(t, "--output=", "../../examples/definitions")
		if code != 1 || !strings.Contains(stderr, "--output") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("nothing to convert", func(t *testing.T) {
		// An OpenSLO Service alone, or an empty directory, used to crash the
		// YAML encoder ("expected STREAM-START").
		dir := t.TempDir()
		service := filepath.Join(dir, "service.yaml")
		if err := os.WriteFile(service, []byte("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: shop}\nspec: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		empty := t.TempDir()
		for _, args := range [][]string{{service}, {empty}, {"-o", t.TempDir(), service}} {
			stdout, stderr, code := runConvert(t, args...)
			if code != 0 || stdout != "" || !strings.Contains(stderr, "nothing to convert") || strings.Contains(stderr, "marshal") {
				t.Errorf("convert %v: exit %d, stdout %q, stderr %q; want exit 0, no output and \"nothing to convert\"", args, code, stdout, stderr)
			}
		}
	})
}

// onlyWarnings reports whether every line of stderr is a warning.
func onlyWarnings(stderr string) bool {
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line != "" && !strings.Contains(line, ": warning: ") {
			return false
		}
	}
	return true
}
