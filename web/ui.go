package web

import (
	"html/template"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/slogate/slogate/evaluator"
)

// uiRoutes serves the built-in web UI: server-rendered HTML, readable
// without JavaScript.
func (s *Server) uiRoutes() {
	s.mux.HandleFunc("GET /{$}", s.overview)
}

var overviewTmpl = template.Must(template.New("overview").Funcs(template.FuncMap{
	"pct": func(n evaluator.Num) string {
		if !n.Valid() {
			return "–"
		}
		return strconv.FormatFloat(float64(n)*100, 'f', 3, 64) + "%"
	},
	"num": func(n evaluator.Num) string {
		if !n.Valid() {
			return "–"
		}
		return strconv.FormatFloat(float64(n), 'g', 4, 64)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<title>slogate</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}.pass{color:#1a7f37}.fail{color:#cf222e}.unknown{color:#9a6700}</style>
</head><body>
<h1>slogate</h1>
<h2>SLOs</h2>
<table><tr><th>SLO</th><th>service</th><th>objective</th><th>SLI</th><th>budget remaining</th><th>fresh</th></tr>
{{range .SLOs}}<tr><td><a href="/api/v1/slos/{{.Name}}">{{.Name}}</a></td><td>{{.Service}}</td><td>{{.Objective}}%</td><td>{{pct .SLI}}</td><td>{{pct .BudgetRemaining}}</td><td>{{.Fresh}}</td></tr>
{{end}}</table>
<h2>Hypotheses</h2>
<table><tr><th>hypothesis</th><th>verdict</th><th>probes</th></tr>
{{range .Hypotheses}}<tr><td><a href="/api/v1/hypotheses/{{.Name}}">{{.Name}}</a></td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{range .Probes}}{{.Name}} = {{num .Value}} ({{.Tolerance}}) <span class="{{.Verdict}}">{{.Verdict}}</span><br>{{end}}</td></tr>
{{end}}</table>
</body></html>
`))

func (s *Server) overview(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		SLOs       []evaluator.SLOStatus
		Hypotheses []evaluator.HypothesisStatus
	}{s.opts.Evaluator.SLOs(), s.opts.Evaluator.Hypotheses()}
	if err := overviewTmpl.Execute(w, data); err != nil {
		s.logger.Warn("rendering the overview", zapError(err))
	}
}

func zapError(err error) zap.Field { return zap.Error(err) }
