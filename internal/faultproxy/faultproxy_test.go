package faultproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/slogate/slogate/internal/faultproxy"
)

// Every mode must leave no goroutine behind once the proxy and the clients'
// connections are closed: the evaluator's fault tests rely on it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const vectorAnswer = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"shop"},"value":[1700000000.5,"0.25"]}]},"warnings":["w"]}`

// upstream is a small stand-in for Prometheus that answers every query
// with vectorAnswer and remembers the last request.
type upstream struct {
	*httptest.Server
	last chan *http.Request
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{last: make(chan *http.Request, 100)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.last <- r
		w.Header().Set("Content-Type", "application/json")
		switch r.Form.Get("query") {
		case "scalar":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`)
		default:
			_, _ = io.WriteString(w, vectorAnswer)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// client is an HTTP client whose keep-alive connections are closed when the
// test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

func query(c *http.Client, base, q string) (int, string, error) {
	resp, err := c.PostForm(base+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestPass(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	code, body, err := query(client(t, 5*time.Second), p.URL(), "up")
	if err != nil || code != 200 || body != vectorAnswer {
		t.Fatalf("got %d %q %v, want the upstream's answer", code, body, err)
	}
	r := <-up.last
	if r.URL.Path != "/api/v1/query" || r.Form.Get("query") != "up" {
		t.Errorf("upstream got %s %s query=%q", r.Method, r.URL.Path, r.Form.Get("query"))
	}
	if p.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", p.Requests())
	}
}

// A dead upstream must look dead through the proxy: a connection error, not
// an HTTP answer that the client would classify as a server error.
func TestUpstreamDownResets(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	up.Close()
	_, _, err := query(client(t, 5*time.Second), p.URL(), "up")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("error %v, want a connection reset", err)
	}
}

func TestDrop(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	c := client(t, 5*time.Second)
	p.Drop()
	for range 3 { // also on a fresh connection each time
		if _, _, err := query(c, p.URL(), "up"); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("error %v, want a connection reset", err)
		}
	}
	p.Pass()
	if code, _, err := query(c, p.URL(), "up"); err != nil || code != 200 {
		t.Fatalf("after Pass: %d %v", code, err)
	}
}

func TestStatus(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	c := client(t, 5*time.Second)
	const promErr = `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`
	p.Status(http.StatusServiceUnavailable, promErr)
	resp, err := c.PostForm(p.URL()+"/api/v1/query", url.Values{"query": {"up"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(b) != promErr || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q (%s), want 503 with the JSON body", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	p.Status(http.StatusInternalServerError, "boom")
	if code, body, err := query(c, p.URL(), "up"); err != nil || code != 500 || body != "boom" {
		t.Errorf("got %d %q %v, want 500 boom", code, body, err)
	}
	if len(up.last) != 0 {
		t.Errorf("the upstream was asked %d times, want never", len(up.last))
	}
}

// A hanging request is answered once the mode changes back.
func TestHangReleasedByPass(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	p.Hang()
	type answer struct {
		code int
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		code, _, err := query(client(t, 30*time.Second), p.URL(), "up")
		done <- answer{code, err}
	}()
	waitRequests(t, p, 1)
	select {
	case a := <-done:
		t.Fatalf("answered while hanging: %+v", a)
	case <-time.After(200 * time.Millisecond):
	}
	p.Pass()
	if a := <-done; a.err != nil || a.code != 200 {
		t.Fatalf("after Pass: %+v", a)
	}
}

// A client that gives up ends the hanging handler (goleak checks it), and
// Close ends those whose clients wait on.
func TestHangClientTimeoutAndClose(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	p.Hang()
	_, _, err := query(client(t, 100*time.Millisecond), p.URL(), "up")
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want a client timeout", err)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := query(client(t, 30*time.Second), p.URL(), "up")
		done <- err
	}()
	waitRequests(t, p, 2)
	p.Close()
	if err := <-done; err == nil {
		t.Fatal("a request hanging when the proxy closed got an answer")
	}
}

func TestSlow(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	const d = 300 * time.Millisecond
	p.Slow(d)
	start := time.Now()
	code, _, err := query(client(t, 5*time.Second), p.URL(), "up")
	if err != nil || code != 200 {
		t.Fatalf("got %d %v", code, err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("answered after %s, want at least %s", took, d)
	}
	// Slower than the client's patience: the client times out and the
	// handler returns without asking the upstream.
	p.Slow(time.Hour)
	if _, _, err := query(client(t, 100*time.Millisecond), p.URL(), "up"); err == nil {
		t.Fatal("answered although an hour slow")
	}
}

func TestRewrite(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	c := client(t, 5*time.Second)
	cases := []struct {
		name, query string
		// rewritten is the query the rewrite is for; default query.
		rewritten string
		fn        func([]faultproxy.Sample) []faultproxy.Sample
		want      []faultproxy.Sample // nil: the answer is unchanged
	}{
		{"NaN", "q", "", func(s []faultproxy.Sample) []faultproxy.Sample { s[0].Value = "NaN"; return s },
			[]faultproxy.Sample{{Metric: map[string]string{"job": "shop"}, Time: "1700000000.5", Value: "NaN"}}},
		{"empty", "q", "", func([]faultproxy.Sample) []faultproxy.Sample { return nil }, []faultproxy.Sample{}},
		{"several series", "q", "", func(s []faultproxy.Sample) []faultproxy.Sample {
			return append(s, faultproxy.Sample{Metric: map[string]string{"job": "shop", "replica": "b"}, Time: s[0].Time, Value: "+Inf"})
		}, []faultproxy.Sample{
			{Metric: map[string]string{"job": "shop"}, Time: "1700000000.5", Value: "0.25"},
			{Metric: map[string]string{"job": "shop", "replica": "b"}, Time: "1700000000.5", Value: "+Inf"},
		}},
		{"other query untouched", "other", "q", func([]faultproxy.Sample) []faultproxy.Sample { return nil }, nil},
		{"scalar untouched", "scalar", "", func([]faultproxy.Sample) []faultproxy.Sample { return nil }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rewritten := tc.rewritten
			if rewritten == "" {
				rewritten = tc.query
			}
			p.Rewrite(faultproxy.ForQuery(rewritten, tc.fn))
			code, body, err := query(c, p.URL(), tc.query)
			if err != nil || code != 200 {
				t.Fatalf("got %d %v", code, err)
			}
			if tc.want == nil {
				if tc.query == "scalar" {
					if !strings.Contains(body, `"resultType":"scalar"`) {
						t.Errorf("scalar answer changed: %s", body)
					}
				} else if body != vectorAnswer {
					t.Errorf("answer changed: %s", body)
				}
				return
			}
			var got struct {
				Status string `json:"status"`
				Data   struct {
					ResultType string              `json:"resultType"`
					Result     []faultproxy.Sample `json:"result"`
				} `json:"data"`
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("rewritten answer %s: %v", body, err)
			}
			if got.Status != "success" || got.Data.ResultType != "vector" || len(got.Warnings) != 1 {
				t.Errorf("rewrite lost fields: %s", body)
			}
			if !equalSamples(got.Data.Result, tc.want) {
				t.Errorf("result %+v, want %+v (body %s)", got.Data.Result, tc.want, body)
			}
			if tc.name == "empty" && !strings.Contains(body, `"result":[]`) {
				t.Errorf("empty vector not written as []: %s", body)
			}
		})
	}
}

func TestRewriteVectorLeavesErrorsAlone(t *testing.T) {
	for _, body := range []string{
		`{"status":"error","errorType":"execution","error":"x"}`,
		`not json`,
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	} {
		got := faultproxy.RewriteVector([]byte(body), func([]faultproxy.Sample) []faultproxy.Sample { return nil })
		if string(got) != body {
			t.Errorf("RewriteVector(%s) = %s, want it unchanged", body, got)
		}
	}
}

func equalSamples(a, b []faultproxy.Sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Time != b[i].Time || a[i].Value != b[i].Value || len(a[i].Metric) != len(b[i].Metric) {
			return false
		}
		for k, v := range a[i].Metric {
			if b[i].Metric[k] != v {
				return false
			}
		}
	}
	return true
}

func waitRequests(t *testing.T, p *faultproxy.Proxy, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p.Requests() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("the proxy saw %d requests, want %d", p.Requests(), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Hangup closes without a reset: the client sees the connection end (EOF),
// not an answer and not a reset.
func TestHangup(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	p.Hangup()
	_, _, err := query(client(t, 5*time.Second), p.URL(), "up")
	if !errors.Is(err, io.EOF) {
		t.Fatalf("error %v, want EOF", err)
	}
}

// Cut sends the status, the headers with the full length, and part of the
// body: the client reads an unexpected EOF.
func TestCut(t *testing.T) {
	up := newUpstream(t)
	p := faultproxy.New(t, up.URL)
	p.Cut(10)
	resp, err := client(t, 5*time.Second).PostForm(p.URL()+"/api/v1/query", url.Values{"query": {"up"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(vectorAnswer)) || string(b) != vectorAnswer[:10] || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %d length %d body %q err %v, want 200, the full length, 10 bytes and an unexpected EOF", resp.StatusCode, resp.ContentLength, b, err)
	}
}
