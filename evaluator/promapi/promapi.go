// Package promapi is the evaluator's Querier over the Prometheus HTTP API,
// for Prometheus itself and the backends that speak its API (Thanos Query,
// Mimir, Cortex, VictoriaMetrics).
package promapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/slogate/slogate/internal/redact"
	"github.com/slogate/slogate/query"
)

// Options configure a Client.
type Options struct {
	URL     string
	Timeout time.Duration     // per query; default 10s
	Headers map[string]string // sent with every request, e.g. X-Scope-OrgID
	// MaxResponseBytes bounds the body of an answer (default
	// DefaultMaxResponseBytes): a larger one is refused as a bad result
	// as soon as it is announced or read past the bound, so that a
	// misbehaving backend cannot make slogate read and decode it whole.
	MaxResponseBytes int64
	HTTP             config_util.HTTPClientConfig
	Logger           *zap.Logger
}

// Client queries a Prometheus-compatible HTTP API.
type Client struct {
	api     v1.API
	timeout time.Duration
	logger  *zap.Logger

	warnMu sync.Mutex
	warned map[string]time.Time // query and warnings → last logged
}

var (
	_ query.Querier   = (*Client)(nil)
	_ query.Retention = (*Client)(nil)
)

// New validates opts and builds a client. It does not contact the server.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus.url %q: must be an http or https URL", redact.URL(opts.URL))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if err := opts.HTTP.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus.http: %w", err)
	}
	rt, err := config_util.NewRoundTripperFromConfig(opts.HTTP, "slogate")
	if err != nil {
		return nil, fmt.Errorf("prometheus.http: %w", err)
	}
	if len(opts.Headers) > 0 {
		rt = &headerRoundTripper{headers: opts.Headers, next: rt}
	}
	rt = &limitRoundTripper{max: opts.MaxResponseBytes, next: rt}
	c, err := api.NewClient(api.Config{Address: opts.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus.url %q: %w", redact.URL(opts.URL), err)
	}
	return &Client{api: v1.NewAPI(c), timeout: opts.Timeout, logger: opts.Logger, warned: map[string]time.Time{}}, nil
}

// Query runs an instant query with the client's timeout.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, warnings, _, err := c.api.Query(ctx, query, ts, v1.WithTimeout(c.timeout))
	c.logWarnings(query, warnings)
	if err != nil {
		return nil, classify(ctx, query, err)
	}
	return v, nil
}

// QueryRange runs a range query with the client's timeout.
func (c *Client) QueryRange(ctx context.Context, query string, r query.Range) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, warnings, _, err := c.api.QueryRange(ctx, query, v1.Range{Start: r.Start, End: r.End, Step: r.Step}, v1.WithTimeout(c.timeout))
	c.logWarnings(query, warnings)
	if err != nil {
		return nil, classify(ctx, query, err)
	}
	return v, nil
}

// Retention reads the storage retention from /api/v1/status/runtimeinfo,
// which Prometheus answers ("15d", "15d or 512MiB"); backends without that
// API (Thanos Query, Mimir, VictoriaMetrics) or a size-only retention give
// ok false.
func (c *Client) Retention(ctx context.Context) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	info, err := c.api.Runtimeinfo(ctx)
	if err != nil {
		var apiErr *v1.Error
		if errors.As(err, &apiErr) && (apiErr.Type == v1.ErrClient || apiErr.Type == v1.ErrBadResponse) {
			return 0, false, nil // no such endpoint here: not Prometheus
		}
		return 0, false, classify(ctx, "runtimeinfo", err)
	}
	return parseRetention(info.StorageRetention)
}

// parseRetention reads Prometheus's storageRetention: a duration, a size,
// or "<duration> or <size>".
func parseRetention(s string) (time.Duration, bool, error) {
	for _, part := range strings.Split(s, " or ") {
		if d, err := model.ParseDuration(strings.TrimSpace(part)); err == nil && d > 0 {
			return time.Duration(d), true, nil
		}
	}
	return 0, false, nil
}

// logWarnings logs the warnings of an answer, bounded (MaxMessage each, at
// most maxWarnings) and at most once per warnEvery for the same query and
// warnings: a backend that warns on every query must not flood the log.
func (c *Client) logWarnings(q string, w v1.Warnings) {
	if len(w) == 0 {
		return
	}
	bounded := make([]string, 0, min(len(w), maxWarnings))
	for _, s := range w[:min(len(w), maxWarnings)] {
		bounded = append(bounded, query.Bound(s))
	}
	key := q + "\x00" + strings.Join(bounded, "\x00")
	now := time.Now()
	c.warnMu.Lock()
	last, seen := c.warned[key]
	if !seen || now.Sub(last) >= warnEvery {
		if len(c.warned) >= maxWarned {
			clear(c.warned) // many distinct warnings: start over rather than grow
		}
		c.warned[key] = now
	}
	c.warnMu.Unlock()
	if seen && now.Sub(last) < warnEvery {
		return
	}
	fields := []zap.Field{zap.String("query", q), zap.Strings("warnings", bounded)}
	if len(w) > maxWarnings {
		fields = append(fields, zap.Int("more", len(w)-maxWarnings))
	}
	c.logger.Warn("prometheus warned about a query (repeats of it are not logged for a minute)", fields...)
}

// Limits of warning logging.
const (
	maxWarnings = 5
	warnEvery   = time.Minute
	maxWarned   = 10000
)

// classify maps client errors to failure reasons: a bad query is the user's
// to fix, an unreachable or failing server is an outage, an answer that is
// not Prometheus's (a login page, a wrong URL) is a bad result.
func classify(ctx context.Context, q string, err error) error {
	reason := query.ReasonOther
	var apiErr *v1.Error
	var netErr net.Error
	switch {
	case errors.As(err, new(*TooLargeError)):
		reason = query.ReasonBadResult
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		reason = query.ReasonCanceled
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		reason = query.ReasonTimeout
	case errors.As(err, &apiErr):
		switch apiErr.Type {
		case v1.ErrBadData:
			reason = query.ReasonBadQuery
		case v1.ErrTimeout:
			reason = query.ReasonTimeout
		case v1.ErrCanceled:
			reason = query.ReasonCanceled
		case v1.ErrClient:
			reason = query.ReasonBadQuery
		case v1.ErrServer, v1.ErrExec:
			reason = query.ReasonServer
		case v1.ErrBadResponse:
			reason = query.ReasonBadResult
		}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH):
		reason = query.ReasonUnreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The connection ended before the answer did: closed without a
		// reset (a server exiting, a load balancer giving up) or cut short
		// by a server dying mid-answer. As much an outage as a reset.
		reason = query.ReasonUnreachable
	case errors.As(err, &netErr) && netErr.Timeout():
		reason = query.ReasonTimeout
	default:
		var opErr *net.OpError
		var dnsErr *net.DNSError
		if errors.As(err, &opErr) || errors.As(err, &dnsErr) {
			reason = query.ReasonUnreachable
		}
	}
	return &query.Error{Reason: reason, Query: q, Err: query.BoundError(err)}
}

type headerRoundTripper struct {
	headers map[string]string
	next    http.RoundTripper
}

func (h *headerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	return h.next.RoundTrip(req)
}

// DefaultMaxResponseBytes is the default bound of an answer's body: above
// what an SLO slice, a grouped query over thousands of SLOs or a backfill
// range returns (about 150 bytes a series: 8 MiB is 50,000 series), and
// low enough that the answers read at once (evaluation.max-concurrency, 8,
// each in a buffer that may double) stay near 128 MiB.
const DefaultMaxResponseBytes = 8 << 20

// TooLargeError is an answer refused for its size.
type TooLargeError struct {
	Max int64
	// Announced is the Content-Length the server announced, -1 if it did
	// not (the body was read up to the bound).
	Announced int64
}

func (e *TooLargeError) Error() string {
	size := fmt.Sprintf("more than %d bytes", e.Max)
	if e.Announced >= 0 {
		size = fmt.Sprintf("%d bytes", e.Announced)
	}
	return fmt.Sprintf("answer of %s refused: larger than prometheus.max-response-bytes (%d); raise it if the backend's answers are legitimately this large", size, e.Max)
}

// limitRoundTripper refuses answers larger than max: at once when their
// Content-Length says so, otherwise when the body is read past max, so
// that no more than max bytes of one answer are ever held.
type limitRoundTripper struct {
	max  int64
	next http.RoundTripper
}

func (l *limitRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, &TooLargeError{Max: l.max, Announced: resp.ContentLength}
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: l.max, max: l.max}
	return resp, nil
}

// limitedBody reads at most left bytes and then fails with TooLargeError
// if there is more.
type limitedBody struct {
	io.ReadCloser
	left int64
	max  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? One byte tells.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, &TooLargeError{Max: b.max, Announced: -1}
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
