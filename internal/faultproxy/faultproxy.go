// Package faultproxy is a loopback HTTP proxy for tests that puts faults
// between slogate and a real Prometheus: it hangs, answers late, answers
// with errors, drops connections or rewrites answers, switched at run time
// while the client keeps using the same URL.
//
// The proxy is transparent in Pass mode, including when the upstream is
// down: a refused upstream connection resets the client's connection, so the
// client sees what it would see talking to the dead server directly (a
// connection error) rather than a 502 a real reverse proxy would invent.
//
// Every handler returns when the proxy closes, and the proxy keeps no
// upstream connection open between requests, so a test that closes it (and
// its client's connections) can check for leaked goroutines.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// maxRequestBody bounds the request body the proxy buffers to read the
// query from; PromQL forms are tiny.
const maxRequestBody = 1 << 20

type kind int

const (
	kindPass kind = iota
	kindHang
	kindSlow
	kindStatus
	kindDrop
	kindHangup
	kindCut
	kindRewrite
	kindHuge
)

// mode is one fault setting. It is replaced, never changed; changed is
// closed when the next one takes over, which releases hanging requests.
type mode struct {
	kind    kind
	delay   time.Duration
	code    int // Status
	body    []byte
	cut     int   // Cut: body bytes to send
	size    int64 // Huge: body bytes to send
	rewrite func(query string, body []byte) []byte
	changed chan struct{}
}

// Proxy forwards HTTP requests to one upstream, with a switchable fault.
type Proxy struct {
	upstream  *url.URL
	srv       *httptest.Server
	transport *http.Transport
	requests  atomic.Int64

	mu   sync.Mutex
	mode *mode

	closeOnce sync.Once
	closed    chan struct{}
}

// New starts a proxy on 127.0.0.1 forwarding to upstream (a base URL like
// http://127.0.0.1:9090), in Pass mode. It is closed when the test ends.
func New(t testing.TB, upstream string) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("faultproxy: upstream %q: must be an http or https base URL", upstream)
	}
	p := &Proxy{
		upstream: u,
		// No keep-alive upstream: no idle connection goroutine outlives a
		// request, and a restarted upstream is dialled anew at once.
		transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		mode:      &mode{kind: kindPass, changed: make(chan struct{})},
		closed:    make(chan struct{}),
	}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

// URL is the proxy's base URL, to be used in place of the upstream's.
func (p *Proxy) URL() string { return p.srv.URL }

// Requests is how many requests reached the proxy so far, whatever the
// mode; a test can check that its fault was actually exercised.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Pass forwards requests unchanged. Requests hanging in Hang mode go on to
// the upstream.
func (p *Proxy) Pass() { p.set(&mode{kind: kindPass}) }

// Hang accepts requests and never answers them, until the mode changes (then
// they are handled by the new mode), the client gives up or the proxy
// closes.
func (p *Proxy) Hang() { p.set(&mode{kind: kindHang}) }

// Slow forwards requests after waiting d, unless the client gives up first.
func (p *Proxy) Slow(d time.Duration) { p.set(&mode{kind: kindSlow, delay: d}) }

// Status answers every request with code and body, without asking the
// upstream. A body that is valid JSON is sent as application/json, like
// Prometheus's own error answers.
func (p *Proxy) Status(code int, body string) {
	p.set(&mode{kind: kindStatus, code: code, body: []byte(body)})
}

// Drop resets every connection as soon as a request arrives on it, as a
// crashing server or a stateful firewall would.
func (p *Proxy) Drop() { p.set(&mode{kind: kindDrop}) }

// Hangup closes every connection as soon as a request arrives on it, without
// an answer but without a reset either (a FIN), as a server that exits or a
// load balancer that gives up does.
func (p *Proxy) Hangup() { p.set(&mode{kind: kindHangup}) }

// Cut forwards requests but sends only the first n bytes of each answer's
// body (its headers still announce all of it) and then closes the
// connection, as a server that dies while answering does.
func (p *Proxy) Cut(n int) { p.set(&mode{kind: kindCut, cut: max(n, 0)}) }

// Huge answers every request, without asking the upstream, with a
// successful instant vector of about size bytes of valid JSON, sent in
// chunks without a Content-Length as it is generated (the proxy never holds
// it), as a backend answering a query over far too many series would.
func (p *Proxy) Huge(size int64) { p.set(&mode{kind: kindHuge, size: size}) }

// Rewrite forwards requests and passes every successful answer's body
// through fn with the request's PromQL query (the "query" parameter; empty
// for other endpoints). See RewriteVector and ForQuery for Prometheus
// answers.
func (p *Proxy) Rewrite(fn func(query string, body []byte) []byte) {
	p.set(&mode{kind: kindRewrite, rewrite: fn})
}

func (p *Proxy) set(m *mode) {
	m.changed = make(chan struct{})
	p.mu.Lock()
	old := p.mode
	p.mode = m
	p.mu.Unlock()
	close(old.changed)
}

func (p *Proxy) current() *mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// CloseClientConnections closes every connection clients hold to the proxy,
// idle or busy, so that their keep-alive goroutines end and the next request
// dials anew. The proxy keeps serving.
func (p *Proxy) CloseClientConnections() { p.srv.CloseClientConnections() }

// Close stops the proxy: hanging and waiting handlers return (their
// connections are reset) and Close returns once every handler has.
// Closing twice does nothing.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.srv.Close()
		p.transport.CloseIdleConnections()
	})
}

// ServeHTTP applies the current mode to one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	// Read the body first: net/http notices a client that hangs up only
	// once the body is consumed, and a hanging handler must notice it.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		reset(w)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	ctx := r.Context()
	for {
		m := p.current()
		switch m.kind {
		case kindHang:
			select {
			case <-m.changed:
				continue
			case <-ctx.Done():
			case <-p.closed:
				reset(w)
			}
			return
		case kindSlow:
			timer := time.NewTimer(m.delay)
			select {
			case <-timer.C:
				p.forward(w, r, body, nil, false)
			case <-ctx.Done():
				timer.Stop()
			case <-p.closed:
				timer.Stop()
				reset(w)
			}
			return
		case kindStatus:
			ct := "text/plain; charset=utf-8"
			if json.Valid(m.body) {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
			w.WriteHeader(m.code)
			_, _ = w.Write(m.body)
			return
		case kindDrop:
			reset(w)
			return
		case kindHangup:
			hangup(w, false)
			return
		case kindCut:
			p.forward(w, r, body, func(_ string, b []byte) []byte { return b[:min(m.cut, len(b))] }, true)
			hangup(w, false)
			return
		case kindRewrite:
			p.forward(w, r, body, m.rewrite, false)
			return
		case kindHuge:
			writeHuge(w, m.size)
			return
		default:
			p.forward(w, r, body, nil, false)
			return
		}
	}
}

// forward sends r to the upstream and its answer back, through rewrite if
// it is set. With truncate, the answer still announces the length it had
// before the rewrite.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body []byte, rewrite func(string, []byte) []byte, truncate bool) {
	rp := &httputil.ReverseProxy{
		Transport: p.transport,
		// Flush every write, so that a Cut answer's bytes are on the wire
		// before the connection is closed.
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.upstream)
			pr.Out.Host = p.upstream.Host
			// Let the proxy's transport negotiate compression itself, so
			// that a rewrite sees plain JSON.
			pr.Out.Header.Del("Accept-Encoding")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client gave up; nobody to answer
			}
			// The upstream is unreachable (or answered garbage): the
			// client sees its connection fail, as without the proxy.
			reset(w)
		},
	}
	if rewrite != nil {
		query := queryOf(r, body)
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.StatusCode/100 != 2 && !truncate {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			length := len(b)
			b = rewrite(query, b)
			if !truncate {
				length = len(b)
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(length)
			resp.Header.Set("Content-Length", strconv.Itoa(length))
			resp.Header.Del("Content-Encoding")
			return nil
		}
	}
	rp.ServeHTTP(w, r)
}

// writeHuge writes a vector answer of about size bytes, a sample at a
// time, until done or the client leaves.
func writeHuge(w http.ResponseWriter, size int64) {
	const head, tail = `{"status":"success","data":{"resultType":"vector","result":[`, `]}}`
	sample := []byte(`{"metric":{"__name__":"up","instance":"host-with-a-long-name-for-padding:9100"},"value":[1700000000,"1"]},`)
	n := max((size-int64(len(head)+len(tail)))/int64(len(sample)), 1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	for i := int64(0); i < n; i++ {
		s := sample
		if i == n-1 {
			s = s[:len(s)-1] // no comma after the last sample
		}
		if _, err := w.Write(s); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, tail)
}

// queryOf returns the PromQL query of a Prometheus API request, sent in the
// URL or, for POST, in the form body.
func queryOf(r *http.Request, body []byte) string {
	if q := r.URL.Query().Get("query"); q != "" {
		return q
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return form.Get("query")
}

// reset closes the client's connection with a TCP reset, without an answer.
func reset(w http.ResponseWriter) { hangup(w, true) }

// hangup closes the client's connection, after what was written so far,
// with a reset (rst) or an orderly close.
func hangup(w http.ResponseWriter, rst bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	switch {
	case errors.Is(err, http.ErrHijacked):
		return // closed already, e.g. by the upstream error handler
	case err != nil:
		// Not hijackable (HTTP/2): aborting the handler is the closest.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Sample is one element of an instant vector in a Prometheus query answer.
type Sample struct {
	Metric map[string]string
	// Time is the timestamp as Prometheus wrote it (Unix seconds).
	Time json.Number
	// Value is the value as Prometheus writes it: "0.25", "NaN", "+Inf".
	Value string
}

// MarshalJSON writes s as Prometheus does: {"metric":{...},"value":[t,"v"]}.
func (s Sample) MarshalJSON() ([]byte, error) {
	metric := s.Metric
	if metric == nil {
		metric = map[string]string{}
	}
	return json.Marshal(struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}{metric, [2]any{s.Time, s.Value}})
}

// UnmarshalJSON reads a Prometheus vector element.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var raw struct {
		Metric map[string]string `json:"metric"`
		Value  []json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if len(raw.Value) != 2 {
		return errors.New("faultproxy: sample value is not a [time, value] pair")
	}
	var ts json.Number
	if err := json.Unmarshal(raw.Value[0], &ts); err != nil {
		return err
	}
	var v string
	if err := json.Unmarshal(raw.Value[1], &v); err != nil {
		return err
	}
	s.Metric, s.Time, s.Value = raw.Metric, ts, v
	return nil
}

// RewriteVector decodes the vector of a successful query answer, lets fn
// change its samples and encodes the answer again, keeping every other
// field (warnings, stats). Other answers (errors, scalars, matrices,
// garbage) come back unchanged.
func RewriteVector(body []byte, fn func([]Sample) []Sample) []byte {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return body
	}
	var status string
	if err := json.Unmarshal(top["status"], &status); err != nil || status != "success" {
		return body
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(top["data"], &data); err != nil {
		return body
	}
	var resultType string
	if err := json.Unmarshal(data["resultType"], &resultType); err != nil || resultType != "vector" {
		return body
	}
	var samples []Sample
	if err := json.Unmarshal(data["result"], &samples); err != nil {
		return body
	}
	samples = fn(samples)
	if samples == nil {
		samples = []Sample{} // Prometheus writes an empty vector as []
	}
	var err error
	if data["result"], err = json.Marshal(samples); err != nil {
		return body
	}
	if top["data"], err = json.Marshal(data); err != nil {
		return body
	}
	out, err := json.Marshal(top)
	if err != nil {
		return body
	}
	return out
}

// ForQuery returns a Rewrite function that applies fn to the vector answers
// of exactly query and passes every other answer through. slogate asks
// unrelated queries of a cycle together, as a union of
// label_replace(<query>, "__slogate_union", "<i>", "", "") terms: in the
// answer to such a union, fn gets the samples of query's term only, as
// query's own answer would have them.
func ForQuery(query string, fn func([]Sample) []Sample) func(string, []byte) []byte {
	want := query
	if expr, err := promqlParser.ParseExpr(query); err == nil {
		want = expr.String()
	}
	return func(q string, body []byte) []byte {
		if q == query {
			return RewriteVector(body, fn)
		}
		return RewriteTerms(q, body, func(term string, s []Sample) []Sample {
			if term != want {
				return s
			}
			return fn(s)
		})
	}
}

// RewriteTerms is RewriteVector for the answer to a union of slogate's:
// fn is called once per term of the union, with the term's query (as the
// union embeds it: parsed and printed back) and its samples without the
// union label. The answer to a query that is not a union is passed
// through unchanged.
func RewriteTerms(q string, body []byte, fn func(query string, samples []Sample) []Sample) []byte {
	terms := unionTerms(q)
	if terms == nil {
		return body
	}
	return RewriteVector(body, func(all []Sample) []Sample {
		byTerm := map[string][]Sample{}
		for _, s := range all {
			m := maps.Clone(s.Metric)
			delete(m, unionLabel)
			byTerm[s.Metric[unionLabel]] = append(byTerm[s.Metric[unionLabel]], Sample{Metric: m, Time: s.Time, Value: s.Value})
		}
		var out []Sample
		for member, query := range terms {
			for _, s := range fn(query, byTerm[member]) {
				m := maps.Clone(s.Metric)
				if m == nil {
					m = map[string]string{}
				}
				m[unionLabel] = member
				s.Metric = m
				out = append(out, s)
			}
		}
		return out
	})
}

// unionLabel is the label that tells the members of a union apart.
const unionLabel = "__slogate_union"

var promqlParser = parser.NewParser(parser.Options{})

// unionTerms maps the label value of each term of the union q to the
// term's query; nil when q is not a union.
func unionTerms(q string) map[string]string {
	if !strings.Contains(q, unionLabel) {
		return nil
	}
	expr, err := promqlParser.ParseExpr(q)
	if err != nil {
		return nil
	}
	terms := map[string]string{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		call, ok := n.(*parser.Call)
		if !ok || call.Func.Name != "label_replace" || len(call.Args) != 5 {
			return nil
		}
		dst, ok1 := call.Args[1].(*parser.StringLiteral)
		val, ok2 := call.Args[2].(*parser.StringLiteral)
		if ok1 && ok2 && dst.Val == unionLabel {
			terms[val.Val] = call.Args[0].String()
		}
		return nil
	})
	if len(terms) == 0 {
		return nil
	}
	return terms
}
