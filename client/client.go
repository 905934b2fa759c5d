// Package client is a typed client for the HTTP API of `slogate serve`: the
// gate of an experiment and the life of its chaos runs (start, watch,
// finish, abort). It is what `slogate gate` and `slogate run` use, and what
// a Go program driving chaos experiments can use the same way.
//
// The answers the API defines as outcomes are values, not errors: a closed
// or unknown gate is a *GateAnswer like an open one. Everything else the
// server refuses comes back as an *APIError carrying the HTTP status and
// the server's message; failures to reach the server are returned as they
// come from net/http, wrapped with what was being asked.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/internal/redact"
)

// DefaultServer is the address of a `slogate serve` with its default
// web.listen-address on the same machine.
const DefaultServer = "http://localhost:8080"

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody bounds what is read of an answer: a run's timeline is the largest
// thing the API returns and stays far below this.
const maxBody = 32 << 20

// The answers are the API's wire types (package api), under the names this
// package has always given them.

// GateAnswer is the server's verdict on whether an experiment may run.
type GateAnswer = api.GateAnswer

// GateStatus is open, closed or unknown.
type GateStatus = api.GateStatus

// Reason is one thing keeping a gate from being open (or, for an open gate,
// worth knowing).
type Reason = api.Reason

// ReasonKind is hypothesis, probe, slo, stale, low-traffic or run-active.
type ReasonKind = api.ReasonKind

// Run is a chaos run as the server reports it.
type Run = api.Run

// TimelineEntry is one verdict, measurement or state change of a run.
type TimelineEntry = api.TimelineEntry

// State is where a run is: running → (aborted | recovering → (passed |
// failed | aborted)).
type State = api.RunState

// Gate statuses.
const (
	StatusOpen    = api.GateOpen
	StatusClosed  = api.GateClosed
	StatusUnknown = api.GateUnknown
)

// States of a run.
const (
	StateRunning    = api.StateRunning
	StateRecovering = api.StateRecovering
	StatePassed     = api.StatePassed
	StateFailed     = api.StateFailed
	StateAborted    = api.StateAborted
)

// ErrGateClosed is wrapped by the error StartRun returns when the server
// refuses to start a run because the experiment's gate is not open.
var ErrGateClosed = errors.New("gate closed")

// APIError is an answer of the server that is neither a result nor one of
// the outcomes the API defines (a closed gate is not an APIError, a missing
// experiment is).
type APIError struct {
	Status  int    // HTTP status code
	Message string // the server's "error", or a summary of a non-JSON body
	// Gate is the gate answer a refused StartRun carried.
	Gate *GateAnswer
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes a refused run match ErrGateClosed.
func (e *APIError) Is(target error) bool {
	return target == ErrGateClosed && e.Gate != nil
}

// Options configure a Client.
type Options struct {
	// Server is the base URL of slogate, with an optional path prefix when
	// it is behind a reverse proxy; DefaultServer when empty.
	Server string
	// Token, when set, is sent with every request; the server requires it
	// for the calls that change runs. It goes as "Authorization: Bearer
	// <token>", or in the TokenHeader header when BasicAuth takes the
	// Authorization header.
	Token string
	// BasicAuth, when set, is sent with every request, for a server whose
	// web config file requires basic auth.
	BasicAuth *BasicAuth
	// HTTPClient carries the requests (TLS, proxies); a fresh client when
	// nil. Its own Timeout should stay zero: it would cut long polls short,
	// and the Client bounds each request itself.
	HTTPClient *http.Client
	// Timeout bounds each request; a long poll gets its wait on top.
	// DefaultTimeout when zero.
	Timeout time.Duration
}

// BasicAuth are the credentials of a server's basic auth.
type BasicAuth struct {
	Username string
	Password string
}

// TokenHeader carries the token when the Authorization header carries
// basic auth; the server accepts the token in either.
const TokenHeader = "X-Slogate-Token"

// Client talks to one slogate server. It is safe for concurrent use.
type Client struct {
	base    string // scheme://host[/prefix], no trailing slash
	token   string
	basic   *BasicAuth
	hc      *http.Client
	timeout time.Duration
}

// New checks opts and returns a Client.
func New(opts Options) (*Client, error) {
	server := opts.Server
	if server == "" {
		server = DefaultServer
	}
	u, err := url.Parse(server)
	if err != nil {
		// url.Error quotes the URL, password included: keep its cause only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("server %q: %w", redact.URL(server), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http or https URL like %s", redact.URL(server), DefaultServer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("server %q: want a base URL without query, fragment or user info", redact.URL(server))
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("timeout %s: must not be negative", opts.Timeout)
	}
	if strings.ContainsAny(opts.Token, "\r\n") {
		// A token read from a file with a stray newline in the middle would
		// otherwise fail much later, as a malformed header.
		return nil, errors.New("token: must be a single line")
	}
	if b := opts.BasicAuth; b != nil {
		switch {
		case b.Username == "":
			return nil, errors.New("basic auth: no username")
		case strings.Contains(b.Username, ":"):
			// It would end the username early in the header.
			return nil, errors.New("basic auth: the username must not contain ':'")
		case b.Password == "":
			return nil, fmt.Errorf("basic auth: no password for user %q", b.Username)
		case strings.ContainsAny(b.Username+b.Password, "\r\n"):
			return nil, errors.New("basic auth: username and password must be single lines")
		}
		basic := *b
		opts.BasicAuth = &basic
	}
	c := &Client{
		base:    strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		token:   opts.Token,
		basic:   opts.BasicAuth,
		hc:      opts.HTTPClient,
		timeout: opts.Timeout,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.base }

// Gate asks whether experiment may run. A closed or unknown gate is an
// answer, not an error.
func (c *Client) Gate(ctx context.Context, experiment string) (*GateAnswer, error) {
	if experiment == "" {
		return nil, errors.New("asking the gate: no experiment name")
	}
	resp, err := c.do(ctx, c.timeout, http.MethodGet, "/api/v1/experiments/"+url.PathEscape(experiment)+"/gate", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("asking the gate of %q: %w", experiment, err)
	}
	var body struct {
		GateAnswer
		api.ErrorBody
	}
	switch resp.status {
	case http.StatusOK, http.StatusConflict, http.StatusServiceUnavailable:
		// A 503 is also what a server (or a proxy before it) answers when
		// it cannot answer at all; only a body with a status is a verdict.
		if json.Unmarshal(resp.body, &body) == nil && body.Error == "" && body.Status != "" {
			if want := body.Status.HTTPStatus(); want != resp.status {
				return nil, fmt.Errorf("asking the gate of %q: server answered %d with status %q", experiment, resp.status, body.Status)
			}
			return &body.GateAnswer, nil
		}
	}
	return nil, fmt.Errorf("asking the gate of %q: %w", experiment, resp.apiError())
}

// StartRun asks the gate and, if it is open, starts a run of experiment in
// one step. When the server refuses, the error wraps ErrGateClosed (it is
// an *APIError) and the gate answer that explains why is returned too.
func (c *Client) StartRun(ctx context.Context, experiment string) (*Run, *GateAnswer, error) {
	if experiment == "" {
		return nil, nil, errors.New("starting a run: no experiment name")
	}
	resp, err := c.do(ctx, c.timeout, http.MethodPost, "/api/v1/experiments/"+url.PathEscape(experiment)+"/runs", nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("starting a run of %q: %w", experiment, err)
	}
	if resp.status == http.StatusCreated {
		run, err := resp.run()
		if err != nil {
			return nil, nil, fmt.Errorf("starting a run of %q: %w", experiment, err)
		}
		return run, nil, nil
	}
	apiErr := resp.apiError()
	// Whatever the code, a refusal that carries a gate answer is the gate
	// saying no; the API uses 409 for it.
	var refusal api.ErrorBody
	if json.Unmarshal(resp.body, &refusal) == nil && refusal.Gate != nil && refusal.Gate.Status != "" {
		apiErr.Gate = refusal.Gate
	}
	return nil, apiErr.Gate, fmt.Errorf("starting a run of %q: %w", experiment, apiErr)
}

// GetRun returns the run with the given id.
func (c *Client) GetRun(ctx context.Context, id string) (*Run, error) {
	return c.runCall(ctx, c.timeout, http.MethodGet, "getting", id, "", nil, nil)
}

// FinishRun declares the chaos of a running run done; the server then
// checks that the hypotheses hold again within the experiment's recovery
// time and ends the run passed or failed.
func (c *Client) FinishRun(ctx context.Context, id string) (*Run, error) {
	return c.runCall(ctx, c.timeout, http.MethodPost, "finishing", id, "/finish", nil, nil)
}

// AbortRun ends a run as aborted, recording reason.
func (c *Client) AbortRun(ctx context.Context, id, reason string) (*Run, error) {
	body, err := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	if err != nil {
		return nil, fmt.Errorf("aborting run %q: %w", id, err)
	}
	return c.runCall(ctx, c.timeout, http.MethodPost, "aborting", id, "/abort", nil, body)
}

// WaitRun long-polls a run: the server answers as soon as the run's state
// is no longer state or its timeline grew, or after timeout with the run
// as it is. Pass the state last seen.
func (c *Client) WaitRun(ctx context.Context, id string, state State, timeout time.Duration) (*Run, error) {
	q := url.Values{}
	q.Set("state", string(state))
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	// The server holds the request for up to timeout; the usual request
	// timeout is for the answer once it is given.
	return c.runCall(ctx, timeout+c.timeout, http.MethodGet, "waiting for", id, "/wait", q, nil)
}

func (c *Client) runCall(ctx context.Context, timeout time.Duration, method, doing, id, suffix string, q url.Values, body []byte) (*Run, error) {
	if id == "" {
		return nil, fmt.Errorf("%s a run: no run id", doing)
	}
	resp, err := c.do(ctx, timeout, method, "/api/v1/runs/"+url.PathEscape(id)+suffix, q, body)
	if err != nil {
		return nil, fmt.Errorf("%s run %q: %w", doing, id, err)
	}
	if resp.status < 200 || resp.status > 299 {
		return nil, fmt.Errorf("%s run %q: %w", doing, id, resp.apiError())
	}
	run, err := resp.run()
	if err != nil {
		return nil, fmt.Errorf("%s run %q: %w", doing, id, err)
	}
	return run, nil
}

type response struct {
	status int
	body   []byte
}

// do sends one request and reads the whole answer, so that the connection
// is reused and the caller deals with bytes only.
func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, q url.Values, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "slogate-client")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.basic != nil:
		req.SetBasicAuth(c.basic.Username, c.basic.Password)
		if c.token != "" {
			req.Header.Set(TokenHeader, c.token)
		}
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer (%d): %w", resp.StatusCode, err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("answer (%d) larger than %d bytes", resp.StatusCode, maxBody)
	}
	return &response{status: resp.StatusCode, body: data}, nil
}

func (r *response) run() (*Run, error) {
	var run Run
	if err := json.Unmarshal(r.body, &run); err != nil {
		return nil, fmt.Errorf("decoding the run (%d): %w", r.status, err)
	}
	if run.ID == "" || run.State == "" {
		return nil, fmt.Errorf("decoding the run (%d): no id or state in %s", r.status, snippet(r.body))
	}
	return &run, nil
}

// apiError makes an error of an answer that is not a result: the JSON
// {"error": "..."} the API sends, or a piece of whatever else came (a
// proxy's HTML page, a server that is not slogate).
func (r *response) apiError() *APIError {
	var body api.ErrorBody
	if json.Unmarshal(r.body, &body) == nil && body.Error != "" {
		return &APIError{Status: r.status, Message: body.Error}
	}
	return &APIError{Status: r.status, Message: snippet(r.body)}
}

// snippet is the start of a body on one line, for error messages.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Retryable reports whether a call that failed with err may succeed when
// made again: the server could not be reached, timed out, or answered with
// a server-side or throttling error. A refusal (a closed gate, an unknown
// run, a bad token) is not retryable, nor is a cancelled context.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Gate == nil && (apiErr.Status >= 500 || apiErr.Status == http.StatusTooManyRequests || apiErr.Status == http.StatusRequestTimeout)
	}
	return true
}
