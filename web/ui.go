package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/clip"
)

// The UI is server-rendered html/template pages over the same data as the
// JSON API: no JavaScript, no build step, every page readable with curl or
// a text browser. Live pages refresh themselves with a meta tag.

//go:embed templates/*.html
var templateFS embed.FS

// refreshSeconds is how often live pages reload: a few evaluation cycles at
// the default 30s interval would be too slow to watch a chaos run.
const refreshSeconds = 10

// pages are parsed once: a template error is a programming error and must
// fail at start (and in every test), not on the first request.
var pages = parsePages("overview", "slo", "hypotheses", "runs", "run", "error")

func parsePages(names ...string) map[string]*template.Template {
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		out[n] = template.Must(template.New("layout.html").Funcs(template.FuncMap{
			"badge": verdictClass,
		}).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return out
}

// pageData is what every template gets: the layout's fields and Body, the
// page's own view.
type pageData struct {
	Title string
	Nav   string // the active nav item
	// API is the JSON equivalent of the page, linked from the nav and the
	// heading.
	API      string
	Refresh  int
	Base     string
	Rendered time.Time
	Body     any
}

// Path joins base and the parts, escaping each part, so names with '/' or
// '?' stay one path segment.
func (p *pageData) Path(parts ...string) string {
	var b strings.Builder
	b.WriteString(p.Base)
	for _, s := range parts {
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// uiRoutes serves the built-in web UI.
func (s *Server) uiRoutes() {
	s.mux.HandleFunc("GET /{$}", s.overview)
	s.mux.HandleFunc("GET /slos", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.basePath()+"/", http.StatusFound)
	})
	s.mux.HandleFunc("GET /slos/{name}", s.sloPage)
	s.mux.HandleFunc("GET /hypotheses", s.hypothesesPage)
	s.mux.HandleFunc("GET /runs", s.runsPage)
	s.mux.HandleFunc("GET /runs/{id}", s.runPage)
}

// basePath is the path of ExternalURL: behind a reverse proxy that serves
// slogate under /slogate/, links must carry that prefix.
func (s *Server) basePath() string {
	if s.opts.ExternalURL == "" {
		return ""
	}
	u, err := url.Parse(s.opts.ExternalURL)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

func (s *Server) newPage(title, nav, api string, refresh bool) *pageData {
	p := &pageData{Title: title, Nav: nav, Base: s.basePath(), Rendered: s.opts.Now().UTC()}
	p.API = p.Base + api
	if refresh {
		p.Refresh = refreshSeconds
	}
	return p
}

// render executes into a buffer first, so a failing template gives a clean
// 500 rather than half a page with a 200.
func (s *Server) render(w http.ResponseWriter, code int, name string, p *pageData) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		s.logger.Error("rendering a UI page", zap.String("page", name), zap.Error(err))
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The pages have no script at all; say so, so an injected one cannot run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is an HTML error in the UI's frame, with a way back.
func (s *Server) errorPage(w http.ResponseWriter, code int, nav, api, msg string) {
	p := s.newPage(http.StatusText(code), nav, api, false)
	p.Body = struct {
		Code    int
		Status  string
		Message string
	}{code, http.StatusText(code), msg}
	s.render(w, code, "error", p)
}

func (s *Server) overview(w http.ResponseWriter, _ *http.Request) {
	p := s.newPage("Overview", "overview", "/api/v1/slos", true)
	p.Body = s.overviewView(s.opts.Evaluator.Snapshot())
	s.render(w, http.StatusOK, "overview", p)
}

func (s *Server) sloPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	snap := s.opts.Evaluator.Snapshot()
	st, ok := snap.SLO(name)
	api := "/api/v1/slos/" + url.PathEscape(name)
	if !ok {
		s.errorPage(w, http.StatusNotFound, "overview", api, fmt.Sprintf("There is no SLO named %q. It may have been removed by a reload.", clip.Name(name)))
		return
	}
	p := s.newPage("SLO "+name, "overview", api, true)
	p.Body = s.sloView(snap, st)
	s.render(w, http.StatusOK, "slo", p)
}

func (s *Server) hypothesesPage(w http.ResponseWriter, _ *http.Request) {
	p := s.newPage("Hypotheses & gates", "hypotheses", "/api/v1/experiments", true)
	p.Body = s.hypothesesView(s.opts.Evaluator.Snapshot())
	s.render(w, http.StatusOK, "hypotheses", p)
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	exp := r.URL.Query().Get("experiment")
	api := "/api/v1/runs"
	if exp != "" {
		api = "/api/v1/experiments/" + url.PathEscape(exp) + "/runs"
	}
	runs, err := s.opts.Runs.List(store.ListFilter{Experiment: exp, Limit: 100})
	if err != nil {
		s.errorPage(w, http.StatusInternalServerError, "runs", api, "Reading the runs failed: "+err.Error())
		return
	}
	p := s.newPage("Runs", "runs", api, true)
	p.Body = runsView(exp, runs, s.opts.Now())
	s.render(w, http.StatusOK, "runs", p)
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	api := "/api/v1/runs/" + url.PathEscape(id)
	// An id longer than any run id is not asked of the store, whose
	// messages would quote it whole.
	var run *store.Run
	err := store.ErrNotFound
	if len(id) <= clip.NameBytes {
		run, err = s.opts.Runs.Get(id)
	}
	switch {
	case err == nil:
	case isNotFound(err):
		s.errorPage(w, http.StatusNotFound, "runs", api, fmt.Sprintf("There is no run %q.", clip.Name(id)))
		return
	default:
		s.errorPage(w, http.StatusInternalServerError, "runs", api, "Reading the run failed: "+err.Error())
		return
	}
	// Only a run still in progress changes; a finished one stays put.
	p := s.newPage("Run "+id, "runs", api, !run.State.Terminal())
	p.Body = runView(run, s.opts.Now())
	s.render(w, http.StatusOK, "run", p)
}
