// Package notifier sends slogate's alerts straight to Alertmanager's v2 API,
// so that they do not depend on Prometheus evaluating rules.
//
// The caller hands over the complete set of firing alerts after every
// evaluation (Update); the notifier works out what is new, what must be
// sent again so that Alertmanager does not let it expire, and what has
// resolved. Each Alertmanager URL has its own bounded queue and sender, so
// one dead member of an HA pair delays nothing for the other.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultResendDelay   = time.Minute
	DefaultQueueCapacity = 10000
)

const (
	// maxBatch is how many alerts go into one POST: large enough that a
	// backlog drains in few requests, small enough that a request stays
	// well under Alertmanager's and proxies' body limits.
	maxBatch = 64
	// defaultFlushTimeout bounds the last delivery attempt at shutdown.
	defaultFlushTimeout = 5 * time.Second
	// expiryFactor × the resend interval is how long Alertmanager keeps an
	// alert that is not sent again, as Prometheus does: long enough to
	// survive a few lost resends, short enough that the alerts of a dead
	// slogate resolve by themselves.
	expiryFactor = 4
)

// Alert is one alert as Alertmanager sees it. Its identity is its label set
// (alertname included); annotations may change from one send to the next.
type Alert struct {
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
}

// Options configures a Notifier.
type Options struct {
	// URLs are Alertmanager base URLs (http://am:9093, or with a path
	// prefix). Each one gets every alert: list all members of an HA
	// cluster. Empty: alerts are only logged.
	URLs []string
	// Timeout bounds one POST. Default DefaultTimeout.
	Timeout time.Duration
	// ResendDelay is how often an alert that keeps firing is sent again.
	// Default DefaultResendDelay.
	ResendDelay time.Duration
	// EvaluationInterval is how often Update is called. Firing alerts are
	// sent with endsAt = now + 4 × max(ResendDelay, EvaluationInterval), so
	// that they do not expire between two updates. Optional.
	EvaluationInterval time.Duration
	// QueueCapacity is the number of alerts each URL's queue holds; when it
	// is full the oldest are dropped. Default DefaultQueueCapacity.
	QueueCapacity int
	// Log logs every alert that starts firing or resolves, and every
	// one-shot alert, at info level. It is on whenever URLs is empty, since
	// the log is then the only place alerts go.
	Log bool

	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// HTTPClient sends the requests (TLS, proxies, auth). Default: a client
	// of its own; basic auth may also be given in the URL.
	HTTPClient *http.Client
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Notifier sends alerts to Alertmanagers. Update and Send may be called
// from any goroutine, before or while Run runs.
type Notifier struct {
	opts    Options
	logger  *zap.Logger
	client  *http.Client
	targets []*target
	metrics *metrics
	// backoffMin and backoffMax bound the delay between retries (tests
	// shorten them).
	backoffMin, backoffMax time.Duration
	flushTimeout           time.Duration

	running atomic.Bool

	mu     sync.Mutex
	active map[string]*tracked // by fingerprint
}

// tracked is a firing alert and when it was last queued.
type tracked struct {
	alert    Alert
	lastSent time.Time
}

// New validates opts and returns a Notifier. Nothing is sent until Run.
func New(opts Options) (*Notifier, error) {
	var errs []error
	if opts.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", opts.Timeout))
	}
	if opts.ResendDelay < 0 {
		errs = append(errs, fmt.Errorf("resend delay %s is negative", opts.ResendDelay))
	}
	if opts.EvaluationInterval < 0 {
		errs = append(errs, fmt.Errorf("evaluation interval %s is negative", opts.EvaluationInterval))
	}
	if opts.QueueCapacity < 0 {
		errs = append(errs, fmt.Errorf("queue capacity %d is negative", opts.QueueCapacity))
	}
	type endpoint struct{ name, url string }
	var endpoints []endpoint
	seen := map[string]bool{}
	for _, raw := range opts.URLs {
		name, ep, err := parseURL(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[ep] {
			errs = append(errs, fmt.Errorf("alertmanager URL %q: listed twice", name))
			continue
		}
		seen[ep] = true
		endpoints = append(endpoints, endpoint{name, ep})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notifier options: %w", err)
	}

	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ResendDelay == 0 {
		opts.ResendDelay = DefaultResendDelay
	}
	if opts.QueueCapacity == 0 {
		opts.QueueCapacity = DefaultQueueCapacity
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(endpoints) == 0 {
		opts.Log = true
	}
	n := &Notifier{
		opts:         opts,
		logger:       opts.Logger,
		client:       opts.HTTPClient,
		metrics:      newMetrics(opts.Registerer),
		backoffMin:   100 * time.Millisecond,
		backoffMax:   30 * time.Second,
		flushTimeout: defaultFlushTimeout,
		active:       map[string]*tracked{},
	}
	if n.logger == nil {
		n.logger = zap.NewNop()
	}
	n.logger = n.logger.With(zap.String("component", "notifier"))
	if n.client == nil {
		n.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	for _, ep := range endpoints {
		n.targets = append(n.targets, newTarget(ep.name, ep.url, opts.QueueCapacity, n.metrics))
	}
	return n, nil
}

// parseURL checks an Alertmanager base URL and returns the name used in
// logs and metrics (credentials redacted) and the alerts endpoint.
func parseURL(raw string) (name, endpoint string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("alertmanager URL: %w", err)
	}
	name = u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", fmt.Errorf("alertmanager URL %q: scheme must be http or https", name)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("alertmanager URL %q: no host", name)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("alertmanager URL %q: a base URL has no query or fragment", name)
	}
	return strings.TrimSuffix(name, "/"), u.JoinPath("api", "v2", "alerts").String(), nil
}

// Update takes the complete set of alerts firing now. Alerts are told apart
// by their label sets; a set listed twice counts once (the first wins).
//
// New alerts are queued at once, alerts that keep firing whenever
// ResendDelay has passed since they were last queued, both with endsAt far
// enough ahead that Alertmanager keeps them until the next resend. Alerts
// missing from active are queued once as resolved (endsAt = now). A StartsAt
// left zero is the time the alert was first seen.
func (n *Notifier) Update(active []Alert) {
	now := n.opts.Now()
	endsAt := now.Add(n.expiry())
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := make(map[string]bool, len(active))
	var out []queued
	for _, a := range active {
		fp, err := n.check(a)
		if err != nil {
			n.reject(a, err)
			continue
		}
		if seen[fp] {
			continue
		}
		seen[fp] = true
		a = clone(a)
		a.EndsAt = endsAt
		t, ok := n.active[fp]
		if !ok {
			if a.StartsAt.IsZero() {
				a.StartsAt = now
			}
			t = &tracked{}
			n.active[fp] = t
			n.logAlert("alert firing", a)
		} else if a.StartsAt.IsZero() {
			a.StartsAt = t.alert.StartsAt
		}
		resend := !ok || now.Sub(t.lastSent) >= n.opts.ResendDelay
		t.alert = a
		if resend {
			t.lastSent = now
			out = append(out, queued{fp, a})
		}
	}
	for _, fp := range slices.Sorted(maps.Keys(n.active)) {
		if seen[fp] {
			continue
		}
		a := n.active[fp].alert
		delete(n.active, fp)
		a.EndsAt = now
		if a.StartsAt.After(now) {
			// A StartsAt from a clock ahead of ours: Alertmanager refuses
			// an alert that ends before it starts.
			a.StartsAt = now
		}
		n.logAlert("alert resolved", a)
		out = append(out, queued{fp, a})
	}
	n.enqueue(out)
}

// Send queues one-shot alerts, like a chaos run that was aborted, as they
// are: they are not tracked by Update, never sent again, and never
// resolved by the notifier, so give them an EndsAt (Alertmanager's
// resolve_timeout applies otherwise). A zero StartsAt means now.
func (n *Notifier) Send(alerts ...Alert) {
	now := n.opts.Now()
	out := make([]queued, 0, len(alerts))
	for _, a := range alerts {
		fp, err := n.check(a)
		if err != nil {
			n.reject(a, err)
			continue
		}
		a = clone(a)
		if a.StartsAt.IsZero() {
			a.StartsAt = now
		}
		if !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
			a.StartsAt = a.EndsAt
		}
		n.logAlert("alert sent", a)
		out = append(out, queued{fp, a})
	}
	n.enqueue(out)
}

// expiry is how far ahead of now a firing alert's endsAt lies.
func (n *Notifier) expiry() time.Duration {
	return expiryFactor * max(n.opts.ResendDelay, n.opts.EvaluationInterval)
}

func (n *Notifier) enqueue(alerts []queued) {
	if len(alerts) == 0 {
		return
	}
	for _, t := range n.targets {
		t.queue.push(alerts)
	}
}

// resync queues every firing alert again for one target. It is called when
// a target answers again after failures: an Alertmanager that was down may
// have restarted, and it keeps alerts in memory only, so waiting for the
// next resend would leave it without them for up to ResendDelay.
func (n *Notifier) resync(t *target) {
	endsAt := n.opts.Now().Add(n.expiry())
	n.mu.Lock()
	out := make([]queued, 0, len(n.active))
	for _, fp := range slices.Sorted(maps.Keys(n.active)) {
		a := n.active[fp].alert
		a.EndsAt = endsAt
		out = append(out, queued{fp, a})
	}
	n.mu.Unlock()
	t.queue.push(out)
}

// check returns the alert's fingerprint, or why Alertmanager would refuse
// it. Invalid alerts are refused here, alone, because Alertmanager answers
// a batch holding one of them with 400, and the batch would be dropped.
func (n *Notifier) check(a Alert) (string, error) {
	if a.Labels["alertname"] == "" {
		return "", errors.New("no alertname label")
	}
	for k, v := range a.Labels {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return "", fmt.Errorf("label %q: name empty or not UTF-8, or value not UTF-8", k)
		}
	}
	for k, v := range a.Annotations {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return "", fmt.Errorf("annotation %q: name empty or not UTF-8, or value not UTF-8", k)
		}
	}
	return fingerprint(a.Labels), nil
}

func (n *Notifier) reject(a Alert, err error) {
	n.logger.Error("alert refused before sending", zap.Any("labels", a.Labels), zap.Error(err))
	for _, t := range n.targets {
		t.metrics.rejected.Inc()
	}
}

func (n *Notifier) logAlert(msg string, a Alert) {
	if !n.opts.Log {
		return
	}
	n.logger.Info(msg,
		zap.String("alertname", a.Labels["alertname"]),
		zap.Any("labels", a.Labels),
		zap.String("summary", a.Annotations["summary"]),
		zap.Time("startsAt", a.StartsAt),
		zap.Time("endsAt", a.EndsAt))
}

// Run delivers queued alerts until ctx ends, then makes one last attempt,
// bounded by 5s, to deliver what is still queued. It returns nil at
// shutdown; it fails only when called while already running.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("notifier: Run called twice")
	}
	defer n.running.Store(false)
	// Idle keep-alive connections hold goroutines; let them go with Run.
	defer n.client.CloseIdleConnections()

	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Go(func() { n.deliver(ctx, t) })
	}
	<-ctx.Done()
	wg.Wait()

	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.flushTimeout)
	defer cancel()
	for _, t := range n.targets {
		wg.Go(func() { n.flush(flushCtx, t) })
	}
	wg.Wait()
	return nil
}

// queued is an alert on its way, with its fingerprint.
type queued struct {
	fp    string
	alert Alert
}

// fingerprint identifies a label set: the labels sorted by name, joined
// with separators that cannot occur in UTF-8 text, so that two different
// sets never share one (unlike a hash).
func fingerprint(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(labels[k])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// clone copies the maps, so that the caller may reuse its own.
func clone(a Alert) Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	return a
}
