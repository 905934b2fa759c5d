package examples

// Tests of examples/integrations: every file parses, and the requests each
// integration makes (URL paths, methods, expected status codes, JSON
// paths, the `slogate run` command lines of the pipelines) are made against
// a real `slogate serve` and Prometheus, with the gate open and closed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/util/jsonpath"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

const integrations = "integrations"

// The files of examples/integrations, relative to this package.
var (
	ctkFile    = filepath.Join(integrations, "chaostoolkit", "experiment.json")
	litmusFile = filepath.Join(integrations, "litmus", "chaosengine.yaml")
	argoFile   = filepath.Join(integrations, "argo-rollouts", "analysistemplate.yaml")
	ghFile     = filepath.Join(integrations, "github-actions", "chaos.yml")
	gitlabFile = filepath.Join(integrations, "gitlab-ci", "gitlab-ci.yml")
)

// gatePathRE is the gate endpoint of the HTTP API.
var gatePathRE = regexp.MustCompile(`^/api/v1/experiments/([a-z0-9-]+)/gate$`)

// --- Chaos Toolkit ---

type ctkExperiment struct {
	Version       string                     `json:"version"`
	Title         string                     `json:"title"`
	Description   string                     `json:"description"`
	Configuration map[string]json.RawMessage `json:"configuration"`
	Hypothesis    *struct {
		Title  string        `json:"title"`
		Probes []ctkActivity `json:"probes"`
	} `json:"steady-state-hypothesis"`
	Method    []ctkActivity `json:"method"`
	Rollbacks []ctkActivity `json:"rollbacks"`
}

type ctkActivity struct {
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Tolerance json.RawMessage `json:"tolerance"`
	Provider  struct {
		Type      string   `json:"type"`
		Method    string   `json:"method"`
		URL       string   `json:"url"`
		Timeout   float64  `json:"timeout"`
		Path      string   `json:"path"`
		Arguments []string `json:"arguments"`
	} `json:"provider"`
}

func loadCTK(t *testing.T) ctkExperiment {
	t.Helper()
	b, err := os.ReadFile(ctkFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var e ctkExperiment
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: %v", ctkFile, err)
	}
	if e.Version == "" || e.Title == "" || e.Description == "" || e.Hypothesis == nil || len(e.Hypothesis.Probes) == 0 || len(e.Method) == 0 {
		t.Fatalf("%s: version, title, description, steady-state-hypothesis.probes and method are required", ctkFile)
	}
	return e
}

var ctkVarRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// resolve fills ${name} from the experiment's configuration as Chaos
// Toolkit does: an {"type": "env", "key", "default"} entry reads env (the
// environment the test gives), else its default; a plain value is itself.
func (e ctkExperiment) resolve(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	return ctkVarRE.ReplaceAllStringFunc(s, func(m string) string {
		name := ctkVarRE.FindStringSubmatch(m)[1]
		raw, ok := e.Configuration[name]
		if !ok {
			t.Fatalf("%s: ${%s} is not in the configuration", ctkFile, name)
		}
		var entry struct {
			Type, Key, Default string
		}
		if err := json.Unmarshal(raw, &entry); err == nil && entry.Type == "env" {
			if v, ok := env[entry.Key]; ok {
				return v
			}
			return entry.Default
		}
		var plain string
		if err := json.Unmarshal(raw, &plain); err != nil {
			t.Fatalf("%s: configuration %s: %s", ctkFile, name, raw)
		}
		return plain
	})
}

// gateProbe is the steady-state probe on the gate.
func (e ctkExperiment) gateProbe(t *testing.T) ctkActivity {
	t.Helper()
	for _, p := range e.Hypothesis.Probes {
		if p.Provider.Type == "http" && strings.Contains(p.Provider.URL, "/gate") {
			return p
		}
	}
	t.Fatalf("%s: no http probe on the gate in the steady-state hypothesis", ctkFile)
	return ctkActivity{}
}

// slogateRunAction is the method action that runs the fault under
// `slogate run`.
func (e ctkExperiment) slogateRunAction(t *testing.T) ctkActivity {
	t.Helper()
	for _, a := range e.Method {
		if a.Provider.Type == "process" && a.Provider.Path == "slogate" && len(a.Provider.Arguments) > 0 && a.Provider.Arguments[0] == "run" {
			return a
		}
	}
	t.Fatalf("%s: no method action running `slogate run`", ctkFile)
	return ctkActivity{}
}

// --- Litmus ---

type litmusEngine struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Experiments []struct {
			Name string `yaml:"name"`
			Spec struct {
				Probe []litmusProbe `yaml:"probe"`
			} `yaml:"spec"`
		} `yaml:"experiments"`
	} `yaml:"spec"`
}

type litmusProbe struct {
	Name   string `yaml:"name"`
	Type   string `yaml:"type"`
	Mode   string `yaml:"mode"`
	Inputs struct {
		URL    string `yaml:"url"`
		Method struct {
			Get *struct {
				Criteria     string `yaml:"criteria"`
				ResponseCode string `yaml:"responseCode"`
			} `yaml:"get"`
		} `yaml:"method"`
	} `yaml:"httpProbe/inputs"`
	RunProperties struct {
		ProbeTimeout string `yaml:"probeTimeout"`
		Interval     string `yaml:"interval"`
	} `yaml:"runProperties"`
}

func loadLitmusProbes(t *testing.T) []litmusProbe {
	t.Helper()
	var e litmusEngine
	decodeYAML(t, litmusFile, &e)
	if e.APIVersion != "litmuschaos.io/v1alpha1" || e.Kind != "ChaosEngine" {
		t.Fatalf("%s: %s %s, want litmuschaos.io/v1alpha1 ChaosEngine", litmusFile, e.APIVersion, e.Kind)
	}
	var probes []litmusProbe
	for _, x := range e.Spec.Experiments {
		for _, p := range x.Spec.Probe {
			modes := []string{"SOT", "EOT", "Edge", "Continuous", "OnChaos"}
			if p.Type != "httpProbe" || !slices.Contains(modes, p.Mode) || p.Inputs.Method.Get == nil {
				t.Fatalf("%s: probe %s: want an httpProbe with a get method and a mode among %v", litmusFile, p.Name, modes)
			}
			for _, d := range []string{p.RunProperties.ProbeTimeout, p.RunProperties.Interval} {
				if _, err := time.ParseDuration(d); err != nil {
					t.Errorf("%s: probe %s: runProperties durations are Go durations in Litmus 3: %v", litmusFile, p.Name, err)
				}
			}
			probes = append(probes, p)
		}
	}
	if len(probes) == 0 {
		t.Fatalf("%s: no probes", litmusFile)
	}
	return probes
}

// judge applies a Litmus httpProbe's response code criteria.
func (p litmusProbe) judge(t *testing.T, status int) bool {
	t.Helper()
	want := p.Inputs.Method.Get.ResponseCode
	switch p.Inputs.Method.Get.Criteria {
	case "==":
		return fmt.Sprint(status) == want
	case "!=":
		return fmt.Sprint(status) != want
	}
	t.Fatalf("%s: probe %s: criteria %q is not handled by this test", litmusFile, p.Name, p.Inputs.Method.Get.Criteria)
	return false
}

// --- Argo Rollouts ---

type argoTemplate struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Args []struct {
			Name  string  `yaml:"name"`
			Value *string `yaml:"value"`
		} `yaml:"args"`
		Metrics []struct {
			Name             string `yaml:"name"`
			SuccessCondition string `yaml:"successCondition"`
			FailureCondition string `yaml:"failureCondition"`
			Provider         struct {
				Web *struct {
					URL      string `yaml:"url"`
					Method   string `yaml:"method"`
					JSONPath string `yaml:"jsonPath"`
				} `yaml:"web"`
			} `yaml:"provider"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

var argoArgRE = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}`)

// argoURL fills {{args.name}} as Argo does when it instantiates the
// template with args.
func argoURL(u string, args map[string]string) string {
	return argoArgRE.ReplaceAllStringFunc(u, func(s string) string {
		return args[argoArgRE.FindStringSubmatch(s)[1]]
	})
}

// conditionRE is the one successCondition form this test evaluates; Argo
// reads a full expression language, which is not needed for a gate.
var conditionRE = regexp.MustCompile(`^result == "([^"]*)"$`)

// --- GitHub Actions and GitLab CI ---

type ghWorkflow struct {
	Jobs map[string]struct {
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name string `yaml:"name"`
			Uses string `yaml:"uses"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

type gitlabJob struct {
	Stage        string            `yaml:"stage"`
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	Script       []string          `yaml:"script"`
	AllowFailure struct {
		ExitCodes []int `yaml:"exit_codes"`
	} `yaml:"allow_failure"`
}

var secretRE = regexp.MustCompile(`^\$\{\{\s*secrets\.([A-Z0-9_]+)\s*\}\}$`)

// ghRunStep returns the env and the script of the step that calls
// `slogate run`, with the job's ${{ secrets.X }} taken from secrets.
func ghRunStep(t *testing.T, secrets map[string]string) (env map[string]string, script string) {
	t.Helper()
	var w ghWorkflow
	decodeYAML(t, ghFile, &w)
	for name, job := range w.Jobs {
		for _, step := range job.Steps {
			if !strings.Contains(step.Run, "slogate run ") {
				continue
			}
			env = map[string]string{}
			for k, v := range job.Env {
				m := secretRE.FindStringSubmatch(v)
				if m == nil {
					t.Fatalf("%s: jobs.%s.env.%s = %q: the server and token come from secrets", ghFile, name, k, v)
				}
				env[k] = secrets[m[1]]
			}
			if strings.Contains(step.Run, "${{") {
				t.Fatalf("%s: the step %q uses expressions; keep them in env so that the script runs as it is", ghFile, step.Name)
			}
			return env, step.Run
		}
	}
	t.Fatalf("%s: no step runs `slogate run`", ghFile)
	return nil, ""
}

func gitlabRunJob(t *testing.T) gitlabJob {
	t.Helper()
	var doc map[string]yaml.Node
	decodeYAML(t, gitlabFile, &doc)
	for _, n := range doc {
		var job gitlabJob
		if n.Kind != yaml.MappingNode || n.Decode(&job) != nil {
			continue
		}
		for _, line := range job.Script {
			if strings.Contains(line, "slogate run ") {
				return job
			}
		}
	}
	t.Fatalf("%s: no job runs `slogate run`", gitlabFile)
	return gitlabJob{}
}

// checkRunLine checks a pipeline's `slogate run` line: an experiment the
// examples define, a chaos command after --, and no token on the command
// line, where ps and job logs would show it.
func checkRunLine(t *testing.T, file, script string, vars map[string]string) {
	t.Helper()
	for _, line := range strings.Split(script, "\n") {
		i := strings.Index(line, "slogate run ")
		if i < 0 {
			continue
		}
		fields := strings.Fields(os.Expand(line[i:], func(k string) string { return vars[k] }))
		if len(fields) < 3 {
			t.Fatalf("%s: %q: no experiment", file, line)
		}
		exampleExperiment(t, file, strings.Trim(fields[2], `"`))
		if !slices.Contains(fields, "--") || fields[len(fields)-1] == "--" {
			t.Errorf("%s: %q: the chaos command goes after --", file, line)
		}
		if strings.Contains(line, "--token") {
			t.Errorf("%s: %q: pass the token in SLOGATE_TOKEN, not on the command line", file, line)
		}
	}
}

// --- shared helpers ---

func decodeYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var (
	exampleSetOnce sync.Once
	exampleSet     *slo.Set
	exampleDiags   slo.Diagnostics
)

// exampleExperiment fails unless examples/definitions define experiment,
// so that the integrations stay in step with the example definitions.
func exampleExperiment(t *testing.T, file, experiment string) {
	t.Helper()
	exampleSetOnce.Do(func() { exampleSet, exampleDiags = slo.Load("definitions") })
	if exampleDiags.HasErrors() {
		t.Fatalf("examples/definitions:\n%s", exampleDiags)
	}
	if exampleSet.Experiment(experiment) == nil {
		t.Errorf("%s: experiment %q is not defined in examples/definitions", file, experiment)
	}
}

// gateURL checks that u is the gate endpoint of an example experiment and
// returns it pointed at server instead of the host it names.
func gateURL(t *testing.T, file, u, server string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s: %q: %v", file, u, err)
	}
	m := gatePathRE.FindStringSubmatch(parsed.Path)
	if m == nil {
		t.Fatalf("%s: %q is not GET /api/v1/experiments/{name}/gate", file, u)
	}
	exampleExperiment(t, file, m[1])
	return strings.TrimSuffix(server, "/") + parsed.Path
}

// TestIntegrationFilesParse checks every file and the parts of them that
// can be checked without a server.
func TestIntegrationFilesParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(integrations, "*", "*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("integration files: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(f) {
		case ".json":
			if !json.Valid(b) {
				t.Errorf("%s: not valid JSON", f)
			}
		case ".yaml", ".yml":
			var doc any
			if err := yaml.Unmarshal(b, &doc); err != nil || doc == nil {
				t.Errorf("%s: not YAML: %v", f, err)
			}
		}
	}

	e := loadCTK(t)
	p := e.gateProbe(t)
	if p.Type != "probe" || p.Provider.Method != "GET" || string(p.Tolerance) != "200" {
		t.Errorf("%s: the gate probe must GET with tolerance 200, got %s %s %s", ctkFile, p.Type, p.Provider.Method, p.Tolerance)
	}
	gateURL(t, ctkFile, e.resolve(t, p.Provider.URL, nil), "http://x")
	a := e.slogateRunAction(t)
	args := make([]string, len(a.Provider.Arguments))
	for i, arg := range a.Provider.Arguments {
		args[i] = e.resolve(t, arg, nil)
	}
	exampleExperiment(t, ctkFile, args[1])
	if i := slices.Index(args, "--"); i < 0 || i == len(args)-1 {
		t.Errorf("%s: the fault goes after -- in %v", ctkFile, args)
	}

	for _, probe := range loadLitmusProbes(t) {
		gateURL(t, litmusFile, probe.Inputs.URL, "http://x")
		if !probe.judge(t, http.StatusOK) || probe.judge(t, http.StatusConflict) || probe.judge(t, http.StatusServiceUnavailable) {
			t.Errorf("%s: probe %s must pass on 200 (open) only", litmusFile, probe.Name)
		}
	}

	var tmpl argoTemplate
	decodeYAML(t, argoFile, &tmpl)
	if tmpl.APIVersion != "argoproj.io/v1alpha1" || tmpl.Kind != "AnalysisTemplate" || len(tmpl.Spec.Metrics) == 0 {
		t.Fatalf("%s: want an argoproj.io/v1alpha1 AnalysisTemplate with metrics", argoFile)
	}
	declared := map[string]bool{}
	for _, a := range tmpl.Spec.Args {
		declared[a.Name] = true
	}
	for _, m := range tmpl.Spec.Metrics {
		if m.Provider.Web == nil {
			t.Fatalf("%s: metric %s: want the web provider", argoFile, m.Name)
		}
		for _, used := range argoArgRE.FindAllStringSubmatch(m.Provider.Web.URL, -1) {
			if !declared[used[1]] {
				t.Errorf("%s: metric %s uses {{args.%s}}, which spec.args does not declare", argoFile, m.Name, used[1])
			}
		}
		gateURL(t, argoFile, argoURL(m.Provider.Web.URL, map[string]string{"experiment": "kill-checkout-pod", "slogate-server": "http://x"}), "http://x")
		if !conditionRE.MatchString(m.SuccessCondition) {
			t.Errorf("%s: successCondition %q: want result == \"open\" (jsonPath makes result the status string)", argoFile, m.SuccessCondition)
		}
		if err := jsonpath.New(m.Name).Parse(m.Provider.Web.JSONPath); err != nil {
			t.Errorf("%s: jsonPath: %v", argoFile, err)
		}
	}

	secrets := map[string]string{"SLOGATE_SERVER": "http://x", "SLOGATE_TOKEN": "t"}
	env, script := ghRunStep(t, secrets)
	for _, k := range []string{"SLOGATE_SERVER", "SLOGATE_TOKEN"} {
		if env[k] != secrets[k] {
			t.Errorf("%s: %s must be ${{ secrets.%s }}", ghFile, k, k)
		}
	}
	checkRunLine(t, ghFile, script, env)

	job := gitlabRunJob(t)
	checkRunLine(t, gitlabFile, strings.Join(job.Script, "\n"), job.Variables)
	if !slices.Contains(job.AllowFailure.ExitCodes, 2) {
		t.Errorf("%s: allow_failure.exit_codes should hold 2, the exit code of a closed gate", gitlabFile)
	}
}

// TestIntegrationsAgainstSlogate makes each integration's requests against
// a real slogate serve, while the gate is open and while a run keeps it
// closed, and runs the pipelines' `slogate run` lines.
func TestIntegrationsAgainstSlogate(t *testing.T) {
	srv := startGateServer(t)
	ctk := loadCTK(t)
	ctkEnv := map[string]string{"SLOGATE_SERVER": srv.url}
	probes := loadLitmusProbes(t)
	var tmpl argoTemplate
	decodeYAML(t, argoFile, &tmpl)

	// gateChecks asks the gate as each integration does; open says what
	// the gate is, and so what each must conclude.
	gateChecks := func(t *testing.T, open bool) {
		t.Run("chaostoolkit probe", func(t *testing.T) {
			p := ctk.gateProbe(t)
			status, _ := srv.request(t, p.Provider.Method, ctk.resolve(t, p.Provider.URL, ctkEnv), "")
			var tolerance int
			if err := json.Unmarshal(p.Tolerance, &tolerance); err != nil {
				t.Fatalf("tolerance %s: %v", p.Tolerance, err)
			}
			if met := status == tolerance; met != open {
				t.Errorf("status %d against tolerance %d: steady state met = %v, want %v", status, tolerance, met, open)
			}
		})
		t.Run("litmus probes", func(t *testing.T) {
			for _, p := range probes {
				status, _ := srv.request(t, http.MethodGet, gateURL(t, litmusFile, p.Inputs.URL, srv.url), "")
				if passed := p.judge(t, status); passed != open {
					t.Errorf("probe %s: status %d: passed = %v, want %v", p.Name, status, passed, open)
				}
			}
		})
		t.Run("argo analysis", func(t *testing.T) {
			for _, m := range tmpl.Spec.Metrics {
				u := argoURL(m.Provider.Web.URL, map[string]string{"experiment": "kill-checkout-pod", "slogate-server": srv.url})
				method := cmpOr(m.Provider.Web.Method, http.MethodGet)
				status, body := srv.request(t, method, gateURL(t, argoFile, u, srv.url), "")
				// Argo's web provider: outside 2xx is a measurement error.
				if ok2xx := status >= 200 && status < 300; ok2xx != open {
					t.Errorf("metric %s: status %d; want 2xx exactly when the gate is open", m.Name, status)
				}
				var data any
				if err := json.Unmarshal(body, &data); err != nil {
					t.Fatalf("metric %s: the answer is not JSON: %v", m.Name, err)
				}
				jp := jsonpath.New(m.Name)
				if err := jp.Parse(m.Provider.Web.JSONPath); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := jp.Execute(&out, data); err != nil {
					t.Fatalf("metric %s: jsonPath %s on %s: %v", m.Name, m.Provider.Web.JSONPath, body, err)
				}
				cond := conditionRE.FindStringSubmatch(m.SuccessCondition)
				if cond == nil {
					t.Fatalf("metric %s: successCondition %q", m.Name, m.SuccessCondition)
				}
				if success := out.String() == cond[1]; success != open {
					t.Errorf("metric %s: result %q, successCondition %s = %v, want %v", m.Name, out.String(), m.SuccessCondition, success, open)
				}
			}
		})
	}

	// runEnv is what the pipelines and Chaos Toolkit give slogate: the
	// server and token as environment variables, slogate on the PATH.
	// The caller's own SLOGATE_* settings are left out: a SLOGATE_TOKEN_FILE
	// next to SLOGATE_TOKEN would be refused as ambiguous.
	var runEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLOGATE_") && !strings.HasPrefix(kv, "PATH=") {
			runEnv = append(runEnv, kv)
		}
	}
	runEnv = append(runEnv,
		"PATH="+filepath.Dir(srv.bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SLOGATE_SERVER="+srv.url, "SLOGATE_TOKEN="+srv.token)
	workdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(workdir, "chaos.sh"), []byte("#!/bin/sh\necho chaos injected\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// ctkAction runs the method's `slogate run` as Chaos Toolkit's process
	// provider would, with the fault replaced by `true`.
	ctkAction := func(t *testing.T) (int, string) {
		a := ctk.slogateRunAction(t)
		var args []string
		for _, arg := range a.Provider.Arguments {
			args = append(args, ctk.resolve(t, arg, ctkEnv))
			if arg == "--" {
				break
			}
		}
		return runIn(t, workdir, runEnv, "slogate", append(args, "true")...)
	}
	ghScript := func(t *testing.T) (int, string) {
		env, script := ghRunStep(t, map[string]string{"SLOGATE_SERVER": srv.url, "SLOGATE_TOKEN": srv.token})
		e := slices.Clone(runEnv)
		for k, v := range env {
			e = append(e, k+"="+v)
		}
		// GitHub's bash steps run as bash --noprofile --norc -eo pipefail.
		return runIn(t, workdir, e, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	}
	gitlab := gitlabRunJob(t)
	gitlabScript := func(t *testing.T) (int, string) {
		e := slices.Clone(runEnv)
		for k, v := range gitlab.Variables {
			e = append(e, k+"="+v)
		}
		return runIn(t, workdir, e, "bash", "-eo", "pipefail", "-c", strings.Join(gitlab.Script, "\n"))
	}

	srv.waitGate(t, http.StatusOK)
	t.Run("gate open", func(t *testing.T) { gateChecks(t, true) })

	// A run of the experiment keeps the gate closed.
	var run struct {
		ID string `json:"id"`
	}
	status, body := srv.request(t, http.MethodPost, srv.url+"/api/v1/experiments/kill-checkout-pod/runs", srv.token)
	if status != http.StatusCreated || json.Unmarshal(body, &run) != nil || run.ID == "" {
		t.Fatalf("starting a run: %d %s", status, body)
	}
	t.Run("gate closed", func(t *testing.T) {
		gateChecks(t, false)
		t.Run("chaostoolkit action refused", func(t *testing.T) {
			if code, out := ctkAction(t); code != 2 {
				t.Errorf("slogate run exit %d, want 2 (gate closed):\n%s", code, out)
			}
		})
		t.Run("github actions step warns", func(t *testing.T) {
			code, out := ghScript(t)
			if code != 0 || !strings.Contains(out, "::warning::gate closed") || strings.Contains(out, "chaos injected") {
				t.Errorf("exit %d, want 0 with a warning and no chaos:\n%s", code, out)
			}
		})
		t.Run("gitlab job allowed to fail", func(t *testing.T) {
			code, out := gitlabScript(t)
			if !slices.Contains(gitlab.AllowFailure.ExitCodes, code) || strings.Contains(out, "chaos injected") {
				t.Errorf("exit %d, want one of allow_failure.exit_codes %v and no chaos:\n%s", code, gitlab.AllowFailure.ExitCodes, out)
			}
		})
	})
	if status, body := srv.request(t, http.MethodPost, srv.url+"/api/v1/runs/"+run.ID+"/finish", srv.token); status != http.StatusOK {
		t.Fatalf("finishing the run: %d %s", status, body)
	}

	t.Run("runs", func(t *testing.T) {
		t.Run("chaostoolkit", func(t *testing.T) {
			srv.waitGate(t, http.StatusOK)
			if code, out := ctkAction(t); code != 0 {
				t.Fatalf("slogate run exit %d, want 0 (passed):\n%s", code, out)
			}
			// The steady state after the method: the same gate probe.
			srv.waitGate(t, http.StatusOK)
		})
		t.Run("github actions", func(t *testing.T) {
			srv.waitGate(t, http.StatusOK)
			if code, out := ghScript(t); code != 0 || !strings.Contains(out, "chaos injected") || !strings.Contains(out, "passed") {
				t.Errorf("exit %d, want 0 after running chaos.sh:\n%s", code, out)
			}
		})
		t.Run("gitlab", func(t *testing.T) {
			srv.waitGate(t, http.StatusOK)
			if code, out := gitlabScript(t); code != 0 || !strings.Contains(out, "chaos injected") {
				t.Errorf("exit %d, want 0 after running chaos.sh:\n%s", code, out)
			}
		})
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runIn runs name args in dir with env, returning the exit code and the
// combined output.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (int, string) {
	t.Helper()
	// name is looked up in env's PATH, where slogate is, as the CI runner
	// or Chaos Toolkit would.
	path := ""
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range filepath.SplitList(p) {
				if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() && path == "" {
					path = filepath.Join(d, name)
				}
			}
		}
	}
	if path == "" {
		t.Fatalf("%s is not on the PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out\n%s", name, args, out)
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return 0, string(out)
}

// gateServer is a `slogate serve` process against a real Prometheus that
// scrapes a healthy checkout service, so that the gate opens unless a run
// is active.
type gateServer struct {
	*testenv.Slogate
	url, token, bin string
}

const gateDefinitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  objective: 99
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="checkout",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="checkout"}[{{.window}}]))
  gate: {minBudgetRemaining: 10%}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: checkout-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{job="checkout",code="500"}[5s])) / sum(rate(http_requests_total{job="checkout"}[5s]))
      tolerance: "< 0.1"
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: kill-checkout-pod}
spec:
  hypotheses: [checkout-steady]
  slos: [checkout-availability]
  recovery: 20s
`

func startGateServer(t *testing.T) *gateServer {
	t.Helper()
	target := testenv.NewTarget(t)
	target.Traffic(200) // a healthy service: no errors, but the series exists
	prom := testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("checkout")}})
	srv := testenv.StartSlogate(t, testenv.SlogateOptions{
		PrometheusURL: prom.URL(), Definitions: gateDefinitions, Token: "integration-token", MinRange: 5 * time.Second,
	})
	return &gateServer{Slogate: srv, url: srv.URL(), token: srv.Token(), bin: testenv.SlogateBinary(t)}
}

// request sends a request with token (if not empty) as a bearer token to
// the URL u, as the integration under test built it; no answer fails the
// test.
func (s *gateServer) request(t *testing.T, method, u, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, u, err)
	}
	return resp.StatusCode, b
}

// waitGate waits until the gate of kill-checkout-pod answers status.
func (s *gateServer) waitGate(t *testing.T, status int) {
	t.Helper()
	s.Eventually(90*time.Second, fmt.Sprintf("the gate to answer %d", status), func() error {
		got, body, err := s.Try(http.MethodGet, "/api/v1/experiments/kill-checkout-pod/gate", nil, false)
		if err != nil || got != status {
			return fmt.Errorf("last answer %d %s (%v)", got, body, err)
		}
		return nil
	})
}
