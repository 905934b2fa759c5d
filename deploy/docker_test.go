// Package deploy tests the deployment files: the Dockerfile at the root of
// the repository, the Kubernetes manifests of deploy/kubernetes and the
// systemd unit of deploy/systemd. Docker, a cluster and systemd are not
// available to the tests, so the files are parsed and checked against what
// slogate really does: the Dockerfile's build command is run, the
// ConfigMap's configuration and definitions go through slogate's own
// loaders, and probes, ports, paths and flags are matched across the files
// and against the binary.
package deploy

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/internal/testenv"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from, name string
	body       []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// one returns the only instruction cmd of the stage.
func (s stage) one(t *testing.T, cmd string) instruction {
	t.Helper()
	ins := s.all(cmd)
	if len(ins) != 1 {
		t.Fatalf("Dockerfile stage %s: want one %s, got %d", s.from, cmd, len(ins))
	}
	return ins[0]
}

// argDefaults are the ARG name=default of the stage.
func (s stage) argDefaults() map[string]string {
	out := map[string]string{}
	for _, in := range s.all("ARG") {
		k, v, _ := strings.Cut(in.args, "=")
		out[k] = v
	}
	return out
}

var fromRE = regexp.MustCompile(`^(\S+)(?:\s+(?i:AS)\s+(\S+))?$`)

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		switch {
		case in.cmd == "FROM":
			m := fromRE.FindStringSubmatch(in.args)
			if m == nil {
				t.Fatalf("%s:%d: FROM %s", path, in.line, in.args)
			}
			stages = append(stages, stage{from: m[1], name: m[2]})
		case len(stages) == 0:
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		default:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// execForm decodes the JSON (exec) form of ENTRYPOINT and CMD; the shell
// form would run slogate under /bin/sh, which distroless does not have.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.args), &out); err != nil {
		t.Fatalf("Dockerfile:%d: %s %s: want the exec form [\"...\"]: %v", in.line, in.cmd, in.args, err)
	}
	return out
}

var goDirectiveRE = regexp.MustCompile(`(?m)^go (\d+\.\d+)`)

// TestDockerfileStages checks the image's shape: a Go builder of the
// module's Go version, a distroless final stage running the binary as
// nonroot on the default port with serve as the default command.
func TestDockerfileStages(t *testing.T) {
	root := testenv.RepoRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("want 2 stages (build, final), got %d", len(stages))
	}
	build, final := stages[0], stages[1]

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := goDirectiveRE.FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(m[1]); build.from != want || build.name == "" {
		t.Errorf("build stage FROM %s AS %s, want FROM %s AS <name> (go.mod says go %s)", build.from, build.name, want, m[1])
	}
	if want := "gcr.io/distroless/static-debian12:nonroot"; final.from != want {
		t.Errorf("final stage FROM %s, want %s", final.from, want)
	}

	if got := final.one(t, "USER").args; got != "nonroot" {
		t.Errorf("USER %s, want nonroot", got)
	}
	_, port, err := net.SplitHostPort(config.Default().Web.ListenAddress)
	if err != nil {
		t.Fatal(err)
	}
	if got := final.one(t, "EXPOSE").args; got != port {
		t.Errorf("EXPOSE %s, want %s, the port of the default web.listen-address", got, port)
	}
	if got := execForm(t, final.one(t, "ENTRYPOINT")); !slices.Equal(got, []string{"/slogate"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/slogate\"]", got)
	}
	if got := execForm(t, final.one(t, "CMD")); !slices.Equal(got, []string{"serve", "--config=/etc/slogate/slogate.yaml"}) {
		t.Errorf("CMD %q, want [\"serve\", \"--config=/etc/slogate/slogate.yaml\"]", got)
	}

	// The binary the final stage copies is the one the build stage builds.
	out := buildOutput(t, build)
	copied := false
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.args)
		if len(f) >= 3 && f[0] == "--from="+build.name && f[len(f)-2] == out && f[len(f)-1] == "/slogate" {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s /slogate", build.name, out)
	}
}

// goBuild returns the build stage's RUN that runs go build.
func goBuild(t *testing.T, build stage) string {
	t.Helper()
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			return in.args
		}
	}
	t.Fatal("the build stage has no RUN ... go build")
	return ""
}

var outputRE = regexp.MustCompile(`\s-o\s+(\S+)`)

func buildOutput(t *testing.T, build stage) string {
	t.Helper()
	m := outputRE.FindStringSubmatch(goBuild(t, build))
	if m == nil {
		t.Fatal("go build in the Dockerfile has no -o")
	}
	return m[1]
}

var makeLDFlagRE = regexp.MustCompile(`-X \$\(VERSION_PKG\)\.(\w+)=\$\((\w+)\)`)

// TestDockerfileBuildsStaticBinary runs the Dockerfile's go build as the
// builder would (sh -c, the ARGs as environment variables), here, and
// checks that the result is static, carries the version information the
// Makefile's build target sets, and runs.
func TestDockerfileBuildsStaticBinary(t *testing.T) {
	root := testenv.RepoRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	build := stages[0]
	run := goBuild(t, build)
	if !strings.HasPrefix(run, "CGO_ENABLED=0 go build ") {
		t.Errorf("RUN %s: want CGO_ENABLED=0 go build, for a static binary", run)
	}

	// Every -X of the Makefile's LDFLAGS is set from an ARG of the same name.
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	args := build.argDefaults()
	values := map[string]string{}
	flags := makeLDFlagRE.FindAllStringSubmatch(string(makefile), -1)
	if len(flags) == 0 {
		t.Fatal("no -X $(VERSION_PKG).X=$(VAR) in the Makefile's LDFLAGS")
	}
	for _, f := range flags {
		field, arg := f[1], f[2]
		want := "-X github.com/prometheus/common/version." + field + "=${" + arg + "}"
		if !strings.Contains(run, want) {
			t.Errorf("the Dockerfile's go build lacks %s, which the Makefile sets", want)
		}
		if _, ok := args[arg]; !ok {
			t.Errorf("the build stage has no ARG %s", arg)
		}
		values[arg] = "test-" + strings.ToLower(arg)
	}

	bin := dockerBinary(t, run, values)
	checkStatic(t, bin)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("slogate version: %v\n%s", err, out)
	}
	for _, want := range []string{"version test-version", "revision: test-revision", "branch: test-branch", "test-build_user", "test-build_date"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("slogate version does not show %q:\n%s", want, out)
		}
	}
	// The image's CMD flags exist.
	out, err = exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--config") {
		t.Errorf("slogate serve --help: %v\n%s", err, out)
	}
}

// TestMain removes the binary the Dockerfile tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if dockerBinPath != "" {
		os.RemoveAll(filepath.Dir(dockerBinPath))
	}
	os.Exit(code)
}

var (
	dockerBinOnce sync.Once
	dockerBinPath string
	dockerBinErr  error
)

// dockerBinary runs the Dockerfile's go build command in the repository,
// writing to a temporary file instead of the image's path; the binary is
// shared by the tests of this package.
func dockerBinary(t *testing.T, run string, args map[string]string) string {
	t.Helper()
	dockerBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slogate-docker-build")
		if err != nil {
			dockerBinErr = err
			return
		}
		dockerBinPath = filepath.Join(dir, "slogate")
		m := outputRE.FindStringSubmatchIndex(run)
		cmdline := run[:m[2]] + dockerBinPath + run[m[3]:]
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Dir = testenv.RepoRoot(t)
		cmd.Env = os.Environ()
		for k, v := range args {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			dockerBinErr = err
			t.Logf("%s\n%s", cmdline, out)
		}
	})
	if dockerBinErr != nil {
		t.Fatalf("the Dockerfile's go build: %v", dockerBinErr)
	}
	return dockerBinPath
}

// checkStatic fails unless bin is a static ELF executable: no interpreter
// and no shared libraries, as distroless/static needs.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a dynamic loader (PT_INTERP): not static", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v (%v): not static", bin, libs, err)
	}
}
