// Package web serves slogate's HTTP interface on one listener: metrics,
// health and readiness, the JSON API of SLOs, hypotheses, gates and runs,
// reloads, and the web UI. TLS and basic auth come from an exporter-toolkit
// web config file; mutating API calls can also require a token.
package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/clip"
)

// Options configure a Server.
type Options struct {
	Evaluator *evaluator.Evaluator
	Runs      *chaos.Manager
	Gatherer  prometheus.Gatherer
	Logger    *zap.Logger
	// Reload re-reads the definitions; it returns the problems of a
	// rejected set (the old set stays in force).
	Reload func(ctx context.Context) error
	// ListenAddress is used when no Listener is given.
	ListenAddress string
	Listener      net.Listener
	// WebConfigFile is an exporter-toolkit web config (TLS, basic auth).
	WebConfigFile string
	// APIToken, when set, is required on every mutating request, as
	// "Authorization: Bearer <token>" or in the TokenHeader header (for
	// clients whose Authorization header carries basic auth).
	APIToken     string
	MaxBodyBytes int64
	// ExternalURL is how users reach slogate, for links.
	ExternalURL string
	// EnablePprof serves Go's profiles under /debug/pprof/.
	EnablePprof bool
	// Alive reports whether the evaluation loop is making progress; it is
	// what /health answers, never the state of Prometheus.
	Alive func() bool
	// Now is the clock of the pages ("so far", "rendered at"); default
	// time.Now.
	Now func() time.Time
}

// TokenHeader carries the API token when the Authorization header is taken
// by the basic auth of the web config file.
const TokenHeader = "X-Slogate-Token"

// Server is slogate's HTTP server.
type Server struct {
	opts   Options
	logger *zap.Logger
	mux    *http.ServeMux
}

// New validates opts and builds the routes. Run starts serving.
func New(opts Options) (*Server, error) {
	if opts.Evaluator == nil || opts.Runs == nil || opts.Gatherer == nil {
		return nil, errors.New("web: evaluator, runs and gatherer are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Listener == nil && opts.ListenAddress == "" {
		opts.ListenAddress = ":8080"
	}
	if opts.WebConfigFile != "" {
		if err := toolkit.Validate(opts.WebConfigFile); err != nil {
			return nil, fmt.Errorf("web.config-file %s: %w", opts.WebConfigFile, err)
		}
	}
	s := &Server{opts: opts, logger: opts.Logger.With(zap.String("component", "web")), mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// Handler returns the routes, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	m := s.mux
	m.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	m.HandleFunc("GET /health", s.health)
	m.HandleFunc("GET /-/healthy", s.health)
	m.HandleFunc("GET /ping", s.ready)
	m.HandleFunc("GET /-/ready", s.ready)
	m.HandleFunc("POST /-/reload", s.mutating(s.reload))
	if s.opts.EnablePprof {
		m.HandleFunc("GET /debug/pprof/", pprof.Index)
		m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	m.HandleFunc("PUT /-/reload", s.mutating(s.reload))
	m.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		// Else the mux answers 405 in plain text; API errors are JSON.
		w.Header().Set("Allow", "POST, PUT")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s /-/reload: use POST", clip.Name(r.Method)))
	})

	m.HandleFunc("GET /api/v1/slos", s.listSLOs)
	m.HandleFunc("GET /api/v1/slos/{name}", s.getSLO)
	m.HandleFunc("GET /api/v1/hypotheses", s.listHypotheses)
	m.HandleFunc("GET /api/v1/hypotheses/{name}", s.getHypothesis)
	m.HandleFunc("GET /api/v1/experiments", s.listExperiments)
	m.HandleFunc("GET /api/v1/experiments/{name}/gate", s.gate)
	m.HandleFunc("POST /api/v1/experiments/{name}/runs", s.mutating(s.startRun))
	m.HandleFunc("GET /api/v1/experiments/{name}/runs", s.listRuns)
	m.HandleFunc("GET /api/v1/runs", s.listRuns)
	m.HandleFunc("GET /api/v1/runs/{id}", s.getRun)
	m.HandleFunc("POST /api/v1/runs/{id}/finish", s.mutating(s.finishRun))
	m.HandleFunc("POST /api/v1/runs/{id}/abort", s.mutating(s.abortRun))
	m.HandleFunc("GET /api/v1/runs/{id}/wait", s.waitRun)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", clip.Name(r.Method), clip.Name(r.URL.Path)))
	})
	s.uiRoutes()
}

// Run serves until ctx ends, then shuts down within 10 seconds.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: /wait long-polls for up to 5 minutes.
	}
	l := s.opts.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", s.opts.ListenAddress); err != nil {
			return fmt.Errorf("web.listen-address %s: %w", s.opts.ListenAddress, err)
		}
	}
	cfg := s.opts.WebConfigFile
	flags := &toolkit.FlagConfig{WebConfigFile: &cfg}
	errc := make(chan error, 1)
	go func() {
		errc <- toolkit.Serve(l, srv, flags, slog.New(slog.NewTextHandler(zapWriter{s.logger}, nil)))
	}()
	s.logger.Info("listening", zap.String("address", l.Addr().String()), zap.Bool("webConfig", cfg != ""))
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		return nil
	}
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Alive != nil && !s.opts.Alive() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "evaluation loop stuck"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if !s.opts.Evaluator.Snapshot().Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: the first evaluation has not completed"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reload is not available")
		return
	}
	if err := s.opts.Reload(r.Context()); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "definitions rejected, the previous ones stay in force: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// mutating guards state-changing endpoints: the API token when one is
// configured, and a bound on the request body.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.APIToken != "" && !s.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slogate"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs the token of web.api-token-file, as 'Authorization: Bearer <token>' or, when the Authorization header carries basic auth, as '"+TokenHeader+": <token>'")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		h(w, r)
	}
}

// tokenOK reports whether r carries the API token as a bearer token or in
// TokenHeader. Basic auth of the web config file takes the Authorization
// header, so both cannot share it.
func (s *Server) tokenOK(r *http.Request) bool {
	want := []byte(s.opts.APIToken)
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && subtle.ConstantTimeCompare([]byte(token), want) == 1 {
		return true
	}
	// One value only: a request listing many would be many guesses.
	values := r.Header.Values(TokenHeader)
	return len(values) == 1 && subtle.ConstantTimeCompare([]byte(values[0]), want) == 1
}

func (s *Server) listSLOs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"slos": s.opts.Evaluator.Snapshot().SLOs()})
}

func (s *Server) getSLO(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, ok := s.opts.Evaluator.Snapshot().SLO(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no SLO named %q", clip.Name(name)))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) listHypotheses(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"hypotheses": s.opts.Evaluator.Snapshot().Hypotheses()})
}

func (s *Server) getHypothesis(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st, ok := s.opts.Evaluator.Snapshot().Hypothesis(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no hypothesis named %q", clip.Name(name)))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) listExperiments(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"experiments": s.opts.Runs.Gates()})
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	ans, err := s.opts.Runs.Gate(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, ans.Status.HTTPStatus(), ans)
}

func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	run, ans, err := s.opts.Runs.Start(r.PathValue("name"))
	switch {
	case errors.Is(err, chaos.ErrUnknownExperiment):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, chaos.ErrGateClosed):
		writeJSON(w, http.StatusConflict, api.ErrorBody{Error: err.Error(), Gate: ans})
	case err != nil:
		writeError(w, storeErrorCode(err), err.Error())
	default:
		w.Header().Set("Location", "/api/v1/runs/"+run.ID)
		writeJSON(w, http.StatusCreated, run.API())
	}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "limit: expected a positive integer, got "+strconv.Quote(clip.Name(v)))
			return
		}
		limit = n
	}
	runs, err := s.opts.Runs.List(store.ListFilter{Experiment: r.PathValue("name"), Active: r.URL.Query().Get("active") == "true", Limit: limit})
	if err != nil {
		writeError(w, storeErrorCode(err), err.Error())
		return
	}
	out := make([]*api.Run, len(runs))
	for i, r := range runs {
		out[i] = r.API()
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (s *Server) runError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, chaos.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, storeErrorCode(err), err.Error())
	}
}

// storeErrorCode is 503 for a shared store that did not answer (worth
// retrying; a retried finish or abort is answered 409 if the first one
// went through after all), 500 otherwise.
func storeErrorCode(err error) int {
	if errors.Is(err, store.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// runID is the run id of the request's path. An id longer than any run id
// (at most 128 bytes) names no run: it is answered 404 at once, quoted cut,
// rather than handed to the store, whose messages would quote it whole.
func (s *Server) runID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if len(id) > clip.NameBytes {
		s.runError(w, fmt.Errorf("run %s: %w", clip.Name(id), store.ErrNotFound))
		return "", false
	}
	return id, true
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	id, ok := s.runID(w, r)
	if !ok {
		return
	}
	run, err := s.opts.Runs.Get(id)
	if err != nil {
		s.runError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run.API())
}

func (s *Server) finishRun(w http.ResponseWriter, r *http.Request) {
	id, ok := s.runID(w, r)
	if !ok {
		return
	}
	run, err := s.opts.Runs.Finish(id)
	if err != nil {
		s.runError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run.API())
}

func (s *Server) abortRun(w http.ResponseWriter, r *http.Request) {
	id, ok := s.runID(w, r)
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "body: expected {\"reason\": \"...\"}: "+clip.Name(err.Error()))
			return
		}
	}
	run, err := s.opts.Runs.Abort(id, body.Reason)
	if err != nil {
		s.runError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run.API())
}

func (s *Server) waitRun(w http.ResponseWriter, r *http.Request) {
	id, ok := s.runID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	timeout := 30 * time.Second
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "timeout: expected a duration like 30s, got "+strconv.Quote(clip.Name(v)))
			return
		}
		timeout = min(d, 5*time.Minute)
	}
	current, err := s.opts.Runs.Get(id)
	if err != nil {
		s.runError(w, err)
		return
	}
	seen := len(current.Timeline)
	if v := q.Get("seen"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "seen: expected a non-negative integer, got "+strconv.Quote(clip.Name(v)))
			return
		}
		seen = n
	}
	state := api.RunState(q.Get("state"))
	if state == "" {
		state = current.State
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	run, err := s.opts.Runs.Wait(ctx, id, state, seen)
	if err != nil {
		s.runError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run.API())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.ErrorBody{Error: msg})
}

// zapWriter passes the exporter-toolkit's slog lines to zap.
type zapWriter struct{ l *zap.Logger }

func (z zapWriter) Write(p []byte) (int, error) {
	z.l.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
