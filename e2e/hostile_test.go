package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// TestHostileReload writes hostile definition files (the corpus of
// testdata/hostile/definitions, which the loader rejects or, empty.yaml, a
// reload refuses for defining nothing; plus a huge and a deeply nested
// file) over the definitions of a running `slogate serve` and asks it
// to reload each: every one is refused with a JSON 422 naming where the
// problem is, the process stays up, and the previous definitions and the
// gate keep working.
func TestHostileReload(t *testing.T) {
	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL()})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)
	original := srv.sloNames()
	defsPath := srv.DefinitionsPath()

	type hostile struct {
		name string
		data []byte
	}
	var cases []hostile
	corpus, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "testdata", "hostile", "definitions", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range corpus {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Files the loader accepts (empty.yaml) define nothing: a reload
		// refuses them unless reload.allow-empty is set.
		cases = append(cases, hostile{filepath.Base(file), data})
	}
	if len(cases) < 5 {
		t.Fatalf("only %d rejected files in the hostile corpus", len(cases))
	}
	cases = append(cases,
		hostile{"huge", append([]byte(definitions), bytes.Repeat([]byte("# padding\n"), slo.MaxFileSize/10)...)},
		hostile{"deep", []byte(definitions + "---\n" + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n")},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(defsPath, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			// The loader's own verdict on the same file, to know where
			// the server must say the problem is.
			first := "reload.allow-empty"
			if _, diags := slo.Load(defsPath); diags.HasErrors() {
				first = diags.Errors()[0].Error()
			}

			var rejected struct{ Error string }
			code := srv.do("POST", "/-/reload", true, nil, &rejected)
			if code != http.StatusUnprocessableEntity || !strings.Contains(rejected.Error, first) {
				t.Errorf("reload: %d %.300q, want 422 with %q", code, rejected.Error, first)
			}
			if srv.Exited() {
				t.Fatal("slogate exited")
			}
			if got := srv.sloNames(); !slices.Equal(got, original) {
				t.Errorf("SLOs after a rejected reload: %v, want %v", got, original)
			}
			if g, code := srv.gate(); code != http.StatusOK {
				t.Errorf("gate after a rejected reload: %d %+v, want the old definitions still open", code, g)
			}
		})
	}

	// The hostile files changed nothing: the original loads again.
	if err := os.WriteFile(defsPath, []byte(definitions), 0o644); err != nil {
		t.Fatal(err)
	}
	var ok map[string]string
	if code := srv.do("POST", "/-/reload", true, nil, &ok); code != http.StatusOK {
		t.Fatalf("reload of the original definitions: %d %v", code, ok)
	}
	if v, n := srv.metric("slogate_config_last_reload_successful"); n != 1 || v != 1 {
		t.Errorf("slogate_config_last_reload_successful = %v (%d series) after a good reload, want 1", v, n)
	}
}

// sloNames lists the SLOs the server evaluates.
func (s *server) sloNames() []string {
	s.t.Helper()
	var slos struct{ SLOs []struct{ Name string } }
	if code := s.do("GET", "/api/v1/slos", false, nil, &slos); code != http.StatusOK {
		s.t.Fatalf("GET /api/v1/slos: %d", code)
	}
	var names []string
	for _, o := range slos.SLOs {
		names = append(names, o.Name)
	}
	return names
}
