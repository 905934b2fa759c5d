package slo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds the loader arbitrary files, seeded with every fixture and
// example. Load must never panic, every diagnostic must point at a real
// line, and the Set must never be nil.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{
		"../testdata/definitions/*/*.yaml",
		"../testdata/definitions/twins/*/*.yaml",
		"../examples/definitions/*.yaml",
		"../examples/definitions/*/*.yaml",
	} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("- - - - - -\n"))
	f.Add([]byte("apiVersion: slogate.dev/v1\nkind: SLO\n<<: {metadata: {name: x}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, diags := LoadBytes("fuzz.yaml", data)
		if set == nil {
			t.Fatal("nil Set")
		}
		for _, d := range diags {
			if d.Pos.Line <= 0 || d.Pos.Col <= 0 {
				t.Fatalf("diagnostic without a position: %#v", d)
			}
			if d.Pos.File != "fuzz.yaml" {
				t.Fatalf("diagnostic names another file: %#v", d)
			}
			if d.Severity != LevelError && d.Severity != LevelWarning {
				t.Fatalf("diagnostic without a level: %#v", d)
			}
			if strings.TrimSpace(d.Message) == "" {
				t.Fatalf("diagnostic without a message: %#v", d)
			}
		}
		_ = diags.Err()
		_ = Summarize(set, diags).String()
	})
}
