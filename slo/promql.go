package slo

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// WindowPlaceholder is the template variable of indicator queries. The
// loader stores every query with this exact spelling, whatever spacing the
// file used ({{ .window }}), so FillWindow is all a consumer needs.
const WindowPlaceholder = "{{.window}}"

// windowRE accepts the spellings Go templates (and therefore Sloth) accept.
var windowRE = regexp.MustCompile(`\{\{-?\s*\.window\s*-?\}\}`)

// templateRE finds any other template action, which nothing would fill in.
var templateRE = regexp.MustCompile(`\{\{.*?\}\}`)

// promql parses with default options: the functions and syntax a stock
// Prometheus accepts, since that is what the queries will be sent to.
var promql = parser.NewParser(parser.Options{})

// FillWindow returns query with every {{.window}} replaced by window as a
// PromQL duration ("5m", "30d").
func FillWindow(query string, window time.Duration) string {
	return windowRE.ReplaceAllLiteralString(query, model.Duration(window).String())
}

// Limits on queries, checked before parsing: the PromQL parser takes time
// worse than quadratic in the length of long operator chains (a 1.8 MB
// query took minutes, 16,000 additions over a second), and real queries
// have a few dozen tokens and a handful of nesting levels.
const (
	maxQueryLen    = 32 << 10
	maxQueryTokens = 2000
	maxQueryDepth  = 64
)

// queryTooComplex explains why q is refused before parsing, or returns "".
// It counts tokens and bracket depth roughly, outside string literals.
func queryTooComplex(q string) string {
	if len(q) > maxQueryLen {
		return fmt.Sprintf("the query is %d bytes long; at most %d are accepted", len(q), maxQueryLen)
	}
	tokens, depth, inWord := 0, 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		word := c == '_' || c == ':' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
		switch {
		case word:
			if !inWord {
				tokens++
			}
		case c == '"' || c == '\'' || c == '`':
			tokens++
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' && c != '`' {
					i++
				}
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			tokens++
			switch c {
			case '(', '[', '{':
				if depth++; depth > maxQueryDepth {
					return fmt.Sprintf("the query nests brackets more than %d deep", maxQueryDepth)
				}
			case ')', ']', '}':
				depth--
			}
		}
		inWord = word
		if tokens > maxQueryTokens {
			return fmt.Sprintf("the query has more than %d tokens", maxQueryTokens)
		}
	}
	return ""
}

// canonicalQuery trims the query and normalises the placeholder spelling.
func canonicalQuery(q string) string {
	return windowRE.ReplaceAllLiteralString(strings.TrimSpace(q), WindowPlaceholder)
}

// fillForParse fills each placeholder with a duration of the same length
// ("0000005m"), so that the columns of parse errors match what the user wrote.
func fillForParse(q string) string {
	return windowRE.ReplaceAllStringFunc(q, func(m string) string {
		return strings.Repeat("0", len(m)-2) + "5m"
	})
}

// parseErrorText returns the parser's message for the first error, with its
// line:col inside the query.
func parseErrorText(err error) string {
	text := err.Error()
	var pe parser.ParseErrors
	if errors.As(err, &pe) && len(pe) > 0 {
		text = pe[0].Error()
	}
	if strings.Contains(text, "unknown function with name") {
		// MetricsQL (VictoriaMetrics) has functions PromQL lacks, as in
		// Sloth's victoria-metrics example.
		text += " (slogate reads PromQL, which every Prometheus-compatible backend answers; MetricsQL's own functions are not PromQL)"
	}
	return text
}

// query validates a PromQL query field and returns it in canonical form.
// templated queries (SLO indicators) are filled before parsing and warned
// about when they ignore the window; probe queries must not be templated.
func (d *decoder) query(n *yaml.Node, path string, templated bool) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a PromQL query, got %s", path, yamlnode.Describe(n))
		return "", false
	}
	q := canonicalQuery(n.Value)
	if q == "" {
		d.errorf(n, "%s: the query is empty", path)
		return "", false
	}
	if msg := queryTooComplex(q); msg != "" {
		d.errorf(n, "%s: %s", path, msg)
		return "", false
	}
	hasWindow := strings.Contains(q, WindowPlaceholder)
	if other := templateRE.FindString(strings.ReplaceAll(q, WindowPlaceholder, "")); other != "" {
		d.errorf(n, "%s: unknown template %s: only {{.window}} is filled in", path, other)
		return q, false
	}
	if !templated && hasWindow {
		d.errorf(n, "%s: {{.window}} is only filled in SLO indicator queries; write a fixed range like [5m]", path)
		return q, false
	}
	expr, err := promql.ParseExpr(fillForParse(q))
	if err != nil {
		d.errorf(n, "%s: invalid PromQL: %s", path, parseErrorText(err))
		return q, false
	}
	switch expr.Type() {
	case parser.ValueTypeVector, parser.ValueTypeScalar:
	case parser.ValueTypeMatrix:
		d.errorf(n, "%s: the query returns a range vector; an instant vector or a scalar is needed (wrap it in rate() or another function)", path)
		return q, false
	default:
		d.errorf(n, "%s: the query returns a %s; an instant vector or a scalar is needed", path, expr.Type())
		return q, false
	}
	if msg := pointlessQuery(expr); msg != "" {
		// Valid PromQL, so not an error, but it measures nothing useful
		// (1/0, time()) or makes Prometheus read every series it holds
		// each evaluation.
		d.warnf(n, "%s: %s", path, msg)
		return q, true
	}
	if templated && !hasWindow {
		d.warnf(n, "%s: the query does not use {{.window}}: it returns the same value for every window", path)
	}
	return q, true
}

// pointlessQuery explains why a query that parses cannot measure anything
// useful, or returns "".
func pointlessQuery(expr parser.Expr) string {
	selectors, all := 0, ""
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			selectors++
			if all == "" && matchesEverything(vs.LabelMatchers) {
				all = vs.String()
			}
		}
		return nil
	})
	switch {
	case selectors == 0:
		return "the query reads no series, so its value says nothing about the system"
	case all != "":
		return fmt.Sprintf("the selector %s matches every series in Prometheus; name a metric or add a label matcher", all)
	}
	return ""
}

// matchesEverything reports whether a selector's matchers let any series
// through: each of them (like __name__=~".+" or job!="") accepts names of
// every shape tried here.
func matchesEverything(ms []*labels.Matcher) bool {
	for _, m := range ms {
		for _, v := range []string{"x", "http_requests_total", "up", "Z:9_a"} {
			if !m.Matches(v) {
				return false
			}
		}
	}
	return true
}

// seriesSelector validates the histogram of a latency indicator: a plain
// series selector naming the histogram, which slogate extends with _bucket
// and _count (classic) or passes to histogram_fraction (native).
func (d *decoder) seriesSelector(n *yaml.Node, path string) (string, bool) {
	q, vs, ok := d.plainSelector(n, path)
	if !ok {
		return q, false
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.BucketLabel {
			d.errorf(n, "%s: the selector must not match on %q: slogate picks the bucket from threshold", path, model.BucketLabel)
			return q, false
		}
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if strings.HasSuffix(vs.Name, suffix) {
			d.warnf(n, "%s: name the histogram without the %s suffix (%s): slogate adds the suffixes itself", path, suffix, strings.TrimSuffix(vs.Name, suffix))
			break
		}
	}
	return q, true
}

// plainSelector validates a series selector naming a metric, without
// offset or @ (Pyrra's metric: fields).
func (d *decoder) plainSelector(n *yaml.Node, path string) (string, *parser.VectorSelector, bool) {
	if n == nil {
		return "", nil, false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a series selector, got %s", path, yamlnode.Describe(n))
		return "", nil, false
	}
	q := strings.TrimSpace(n.Value)
	if msg := queryTooComplex(q); msg != "" {
		d.errorf(n, "%s: %s", path, msg)
		return "", nil, false
	}
	expr, err := promql.ParseExpr(q)
	if err != nil {
		d.errorf(n, "%s: invalid series selector: %s", path, parseErrorText(err))
		return q, nil, false
	}
	vs, ok := expr.(*parser.VectorSelector)
	if !ok {
		d.errorf(n, "%s: expected a series selector like http_request_duration_seconds{job=\"x\"}, got an expression", path)
		return q, nil, false
	}
	switch {
	case vs.Name == "":
		d.errorf(n, "%s: the selector must name the metric", path)
		return q, nil, false
	case vs.OriginalOffset != 0 || vs.OriginalOffsetExpr != nil || vs.Timestamp != nil || vs.StartOrEnd != 0:
		d.errorf(n, "%s: the selector must not use offset or @", path)
		return q, nil, false
	}
	return q, vs, true
}

// windowSentinel stands in for the window while an OpenSLO query is
// rewritten through the AST; it is an odd duration no one writes, and its
// rendering is replaced by the placeholder afterwards.
const windowSentinel = 1234567891 * time.Millisecond

// openSLOQuery turns an OpenSLO query, which has a fixed range or none, into
// a windowed query. The rule, in order:
//
//  1. A query that already uses {{.window}} is kept.
//  2. A query with range selectors ([5m]) gets {{.window}} for every range,
//     and increase() becomes rate(): slogate's ratio queries return
//     per-second rates (the ratio is the same either way).
//  3. A counter (counter: true) query without ranges gets every series
//     selector wrapped in rate(…[{{.window}}]); a bare selector is also
//     summed, so sum(x) and x both become sum(rate(x[{{.window}}])).
//  4. Anything else (a gauge without a range) is kept, and validation warns
//     that it does not depend on the window.
//
// Unparsable queries are returned as they are, for validation to report.
func openSLOQuery(q string, counter bool) string {
	q = canonicalQuery(q)
	if strings.Contains(q, WindowPlaceholder) || queryTooComplex(q) != "" {
		return q
	}
	expr, err := promql.ParseExpr(q)
	if err != nil {
		return q
	}
	hasRange := false
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.MatrixSelector:
			hasRange = true
			n.Range, n.RangeExpr = windowSentinel, nil
		case *parser.Call:
			if n.Func != nil && n.Func.Name == "increase" {
				n.Func = parser.Functions["rate"]
			}
		}
		return nil
	})
	switch {
	case hasRange:
	case !counter:
		return q
	default:
		if vs, ok := expr.(*parser.VectorSelector); ok {
			expr = &parser.AggregateExpr{Op: parser.SUM, Expr: vs}
		}
		expr = wrapCounters(expr)
	}
	return strings.ReplaceAll(expr.String(), model.Duration(windowSentinel).String(), WindowPlaceholder)
}

// wrapCounters replaces every series selector under e by its rate over the
// window sentinel. Subqueries are left alone: their inner range is theirs.
func wrapCounters(e parser.Expr) parser.Expr {
	switch n := e.(type) {
	case *parser.VectorSelector:
		return &parser.Call{
			Func: parser.Functions["rate"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: n, Range: windowSentinel}},
		}
	case *parser.AggregateExpr:
		n.Expr = wrapCounters(n.Expr)
	case *parser.BinaryExpr:
		n.LHS, n.RHS = wrapCounters(n.LHS), wrapCounters(n.RHS)
	case *parser.Call:
		for i, a := range n.Args {
			n.Args[i] = wrapCounters(a)
		}
	case *parser.ParenExpr:
		n.Expr = wrapCounters(n.Expr)
	case *parser.UnaryExpr:
		n.Expr = wrapCounters(n.Expr)
	case *parser.StepInvariantExpr:
		n.Expr = wrapCounters(n.Expr)
	}
	return e
}
