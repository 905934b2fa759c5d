package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
)

// statClient talks to Prometheus's HTTP API like slogate's promapi client
// (form-encoded POSTs to /api/v1/query and /api/v1/query_range over
// keep-alive connections), but asks for stats=all and adds up how many
// samples every query read. It is an evaluator.Querier, so the evaluator
// itself can be measured through it, and it counts queries and failures.
type statClient struct {
	base string
	hc   *http.Client

	instant, ranges atomic.Int64 // queries answered
	samples         atomic.Int64 // sum of data.stats.samples.totalQueryableSamples
	failures        atomic.Int64
	// unions are the instant queries answered that were the evaluator's
	// unions of unrelated queries; unionFailures the unions that failed,
	// which are not in failures: the evaluator then asks their members
	// alone, so a failed union costs queries, not answers.
	unions, unionFailures atomic.Int64

	recMu     sync.Mutex
	recording bool
	recorded  []rangeQuery // range queries answered while recording
}

// rangeQuery is one range query as the evaluator asked it.
type rangeQuery struct {
	expr string
	r    evaluator.Range
}

// record starts or stops recording the range queries answered; stopping
// returns them.
func (c *statClient) record(on bool) []rangeQuery {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	c.recording = on
	out := c.recorded
	c.recorded = nil
	return out
}

// runRanges asks the range queries qs again, at most concurrency at a
// time, and fails on the first error.
func (c *statClient) runRanges(ctx context.Context, qs []rangeQuery, concurrency int) error {
	work := make(chan rangeQuery)
	errs := make(chan error, len(qs))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for q := range work {
				if _, err := c.QueryRange(ctx, q.expr, q.r); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, q := range qs {
		work <- q
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// unionLabel is the label of the evaluator's unions (evaluator/union.go):
// a query that sets it is a union.
const unionLabel = "__slogate_union"

var _ evaluator.Querier = (*statClient)(nil)

func newStatClient(base string) *statClient {
	return &statClient{
		base: base,
		hc: &http.Client{
			Timeout: 2 * time.Minute,
			// Keep-alive as in production: a new connection per query would
			// add Prometheus's TLS-less accept and goroutine setup to every
			// measurement. Enough idle connections for the evaluator's 8
			// queries in flight.
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, MaxConnsPerHost: 16},
		},
	}
}

// close drops the idle connections, so no goroutine outlives the benchmark.
func (c *statClient) close() { c.hc.CloseIdleConnections() }

// reset zeroes the counters, e.g. after the evaluator's backfill.
func (c *statClient) reset() {
	c.instant.Store(0)
	c.ranges.Store(0)
	c.samples.Store(0)
	c.failures.Store(0)
	c.unions.Store(0)
	c.unionFailures.Store(0)
}

// Query runs an instant query at ts.
func (c *statClient) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	form := url.Values{"query": {query}, "time": {formatTime(ts)}, "stats": {"all"}}
	v, err := c.post(ctx, "/api/v1/query", form)
	union := strings.Contains(query, unionLabel)
	if err != nil {
		if union {
			c.unionFailures.Add(1)
		} else {
			c.failures.Add(1)
		}
		return nil, &evaluator.QueryError{Reason: evaluator.ReasonOther, Query: query, Err: err}
	}
	c.instant.Add(1)
	if union {
		c.unions.Add(1)
	}
	return v, nil
}

// QueryRange runs a range query.
func (c *statClient) QueryRange(ctx context.Context, query string, r evaluator.Range) (model.Value, error) {
	form := url.Values{
		"query": {query}, "start": {formatTime(r.Start)}, "end": {formatTime(r.End)},
		"step": {strconv.FormatFloat(r.Step.Seconds(), 'f', -1, 64)}, "stats": {"all"},
	}
	v, err := c.post(ctx, "/api/v1/query_range", form)
	if err != nil {
		c.failures.Add(1)
		return nil, &evaluator.QueryError{Reason: evaluator.ReasonOther, Query: query, Err: err}
	}
	c.ranges.Add(1)
	c.recMu.Lock()
	if c.recording {
		c.recorded = append(c.recorded, rangeQuery{query, r})
	}
	c.recMu.Unlock()
	return v, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// apiResponse is the part of a query answer the benchmark reads.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
		Stats      *struct {
			Samples struct {
				TotalQueryableSamples int64 `json:"totalQueryableSamples"`
			} `json:"samples"`
		} `json:"stats"`
	} `json:"data"`
}

func (c *statClient) post(ctx context.Context, path string, form url.Values) (model.Value, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: decoding the answer: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", resp.Status, r.ErrorType, r.Error)
	}
	// Without stats the samples column would silently read 0.
	if r.Data.Stats == nil {
		return nil, errors.New("the answer has no stats although stats=all was asked for")
	}
	c.samples.Add(r.Data.Stats.Samples.TotalQueryableSamples)
	return decodeResult(r.Data.ResultType, r.Data.Result)
}

func decodeResult(typ string, raw json.RawMessage) (model.Value, error) {
	var v model.Value
	switch typ {
	case "vector":
		v = &model.Vector{}
	case "matrix":
		v = &model.Matrix{}
	case "scalar":
		v = &model.Scalar{}
	case "string":
		v = &model.String{}
	default:
		return nil, fmt.Errorf("unknown result type %q", typ)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decoding the %s result: %w", typ, err)
	}
	switch val := v.(type) {
	case *model.Vector:
		return *val, nil
	case *model.Matrix:
		return *val, nil
	}
	return v, nil
}

// cpuSeconds reads process_cpu_seconds_total from Prometheus's own
// /metrics: user plus system CPU of the whole server process, in clock
// ticks (10 ms), which is why a measurement needs seconds of CPU.
func (c *statClient) cpuSeconds(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading Prometheus's CPU: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading Prometheus's CPU: %w", err)
	}
	return 0, errors.New("reading Prometheus's CPU: no process_cpu_seconds_total in /metrics")
}

// query is one expression the benchmark sends, and whether its answer must
// hold data: an empty answer where the data should be means the benchmark
// measures a read of nothing, which would flatter the approach.
type query struct {
	expr     string
	wantData bool
}

// runQueries sends every query as an instant query at ts, at most
// concurrency at a time (slogate's evaluation.max-concurrency default, and
// about what Prometheus's rule manager runs concurrently for many groups).
// It fails on the first error or missing answer.
func (c *statClient) runQueries(ctx context.Context, qs []query, ts time.Time, concurrency int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	work := make(chan query)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range work {
				v, err := c.Query(ctx, q.expr, ts)
				if err != nil {
					fail(err)
					continue
				}
				if q.wantData && isEmpty(v) {
					fail(fmt.Errorf("query %q at %s: no data; the benchmark data does not cover it", q.expr, ts.UTC().Format(time.RFC3339)))
				}
			}
		}()
	}
	for _, q := range qs {
		select {
		case work <- q:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return firstErr
}

func isEmpty(v model.Value) bool {
	switch val := v.(type) {
	case model.Vector:
		return len(val) == 0
	case model.Matrix:
		return len(val) == 0
	case nil:
		return true
	}
	return false
}
