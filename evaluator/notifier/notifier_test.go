package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		wantErr string // substring; empty: valid
	}{
		{name: "no URLs is valid", opts: Options{}},
		{name: "http and https", opts: Options{URLs: []string{"http://am-0:9093", "https://am-1:9093/prefix/"}}},
		{name: "ftp", opts: Options{URLs: []string{"ftp://am:9093"}}, wantErr: `"ftp://am:9093": scheme must be http or https`},
		{name: "no scheme", opts: Options{URLs: []string{"am:9093"}}, wantErr: "scheme must be http or https"},
		{name: "no host", opts: Options{URLs: []string{"http://"}}, wantErr: "no host"},
		{name: "query", opts: Options{URLs: []string{"http://am:9093/?x=1"}}, wantErr: "no query or fragment"},
		{name: "not a URL", opts: Options{URLs: []string{"http://am:9093/%zz"}}, wantErr: "invalid URL escape"},
		{name: "twice", opts: Options{URLs: []string{"http://am:9093", "http://am:9093/"}}, wantErr: `"http://am:9093": listed twice`},
		{name: "password redacted", opts: Options{URLs: []string{"ftp://u:secret@am"}}, wantErr: `"ftp://u:xxxxx@am"`},
		{name: "negative timeout", opts: Options{Timeout: -time.Second}, wantErr: "timeout -1s is negative"},
		{name: "negative resend", opts: Options{ResendDelay: -time.Second}, wantErr: "resend delay -1s is negative"},
		{name: "negative capacity", opts: Options{QueueCapacity: -1}, wantErr: "queue capacity -1 is negative"},
		{name: "all at once", opts: Options{URLs: []string{"ftp://a"}, QueueCapacity: -1}, wantErr: "queue capacity -1 is negative\nalertmanager URL \"ftp://a\": scheme must be http or https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if n.opts.Timeout != DefaultTimeout || n.opts.ResendDelay != DefaultResendDelay || n.opts.QueueCapacity != DefaultQueueCapacity {
					t.Errorf("defaults not applied: %+v", n.opts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	cases := []struct{ in, name, endpoint string }{
		{"http://am:9093", "http://am:9093", "http://am:9093/api/v2/alerts"},
		{"http://am:9093/", "http://am:9093", "http://am:9093/api/v2/alerts"},
		{"https://u:pw@am/alertmanager", "https://u:xxxxx@am/alertmanager", "https://u:pw@am/alertmanager/api/v2/alerts"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			name, ep, err := parseURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.name || ep != tc.endpoint {
				t.Errorf("parseURL(%q) = %q, %q; want %q, %q", tc.in, name, ep, tc.name, tc.endpoint)
			}
		})
	}
}

// wantAlert is what a queued alert should be, times as offsets from t0.
type wantAlert struct {
	name             string
	startsAt, endsAt time.Duration
}

func queuedAlerts(n *Notifier) []wantAlert {
	var out []wantAlert
	for _, e := range n.targets[0].queue.peek(1 << 30) {
		out = append(out, wantAlert{e.alert.Labels["alertname"], e.alert.StartsAt.Sub(t0), e.alert.EndsAt.Sub(t0)})
	}
	return out
}

func drain(n *Notifier) {
	for _, tg := range n.targets {
		tg.queue.ack(tg.queue.peek(1 << 30))
	}
}

// TestUpdate follows the alerts that Update queues through a sequence of
// evaluations, with ResendDelay 1m: firing alerts expire 4m after they were
// last sent.
func TestUpdate(t *testing.T) {
	a, b, c := alert("A"), alert("B"), alert("C")
	steps := []struct {
		name   string
		at     time.Duration
		active []Alert
		want   []wantAlert
	}{
		{name: "new alerts are sent at once", at: 0, active: []Alert{a, b},
			want: []wantAlert{{"A", 0, 4 * time.Minute}, {"B", 0, 4 * time.Minute}}},
		{name: "not again before the resend delay", at: 30 * time.Second, active: []Alert{a, b}},
		{name: "a new one among old ones", at: 45 * time.Second, active: []Alert{a, b, c},
			want: []wantAlert{{"C", 45 * time.Second, 45*time.Second + 4*time.Minute}}},
		{name: "resent after the delay, disappeared one resolved", at: 61 * time.Second, active: []Alert{a, c},
			want: []wantAlert{{"A", 0, 61*time.Second + 4*time.Minute}, {"B", 0, 61 * time.Second}}},
		{name: "resolved only once", at: 62 * time.Second, active: []Alert{a, c}},
		{name: "C resent a delay after its own last send", at: 106 * time.Second, active: []Alert{a, c},
			want: []wantAlert{{"C", 45 * time.Second, 106*time.Second + 4*time.Minute}}},
		{name: "a duplicate counts once", at: 107 * time.Second, active: []Alert{a, a, c}},
		{name: "everything resolves", at: 2 * time.Minute, active: nil,
			want: []wantAlert{{"A", 0, 2 * time.Minute}, {"C", 45 * time.Second, 2 * time.Minute}}},
		{name: "back again: a new alert with a new start", at: 3 * time.Minute, active: []Alert{a},
			want: []wantAlert{{"A", 3 * time.Minute, 7 * time.Minute}}},
	}
	clock := newClock()
	n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}, Now: clock.Now})
	for _, st := range steps {
		clock.Set(st.at)
		n.Update(st.active)
		if got := queuedAlerts(n); !slices.Equal(got, st.want) {
			t.Fatalf("%s: queued %v, want %v", st.name, got, st.want)
		}
		drain(n)
	}
}

func TestUpdateKeepsGivenStartsAt(t *testing.T) {
	clock := newClock()
	n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}, Now: clock.Now})
	a := alert("A")
	a.StartsAt = t0.Add(-time.Hour) // e.g. when the burn-rate condition began
	n.Update([]Alert{a})
	clock.Set(time.Minute)
	n.Update(nil)
	want := []wantAlert{{"A", -time.Hour, 4 * time.Minute}, {"A", -time.Hour, time.Minute}}
	// Coalesced: only the resolve is left.
	if got := queuedAlerts(n); !slices.Equal(got, want[1:]) {
		t.Errorf("queued %v, want %v", got, want[1:])
	}
}

func TestUpdateEndsAtCoversEvaluationInterval(t *testing.T) {
	clock := newClock()
	n, _ := newTestNotifier(t, Options{
		URLs: []string{"http://am.invalid:9093"}, Now: clock.Now,
		ResendDelay: time.Minute, EvaluationInterval: 5 * time.Minute,
	})
	n.Update([]Alert{alert("A")})
	if got, want := queuedAlerts(n), []wantAlert{{"A", 0, 20 * time.Minute}}; !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v: an alert must not expire between two updates", got, want)
	}
}

func TestUpdateCopiesMaps(t *testing.T) {
	n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}})
	a := alert("A")
	n.Update([]Alert{a})
	a.Labels["alertname"] = "changed"
	a.Annotations["summary"] = "changed"
	e := n.targets[0].queue.peek(1)[0]
	if e.alert.Labels["alertname"] != "A" || e.alert.Annotations["summary"] != "A summary" {
		t.Errorf("queued alert changed with the caller's maps: %+v", e.alert)
	}
}

// TestQueue covers coalescing and the bound of a queue.
func TestQueue(t *testing.T) {
	cases := []struct {
		name      string
		capacity  int
		send      []string // alertnames, in order
		want      []string
		wantDrops float64
	}{
		{name: "in order", capacity: 10, send: []string{"A", "B", "C"}, want: []string{"A", "B", "C"}},
		{name: "oldest dropped when full", capacity: 3, send: []string{"A", "B", "C", "D", "E"}, want: []string{"C", "D", "E"}, wantDrops: 2},
		{name: "same alert twice: newest state, at the back", capacity: 10, send: []string{"A", "B", "A"}, want: []string{"B", "A"}},
		{name: "coalescing makes room", capacity: 2, send: []string{"A", "B", "A", "B", "A"}, want: []string{"B", "A"}},
		{name: "a renewed alert is not the oldest", capacity: 2, send: []string{"A", "B", "A", "C"}, want: []string{"A", "C"}, wantDrops: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}, QueueCapacity: tc.capacity})
			for i, name := range tc.send {
				a := alert(name)
				a.Annotations["seq"] = string(rune('0' + i))
				n.Send(a)
			}
			var got []string
			for _, e := range n.targets[0].queue.peek(100) {
				got = append(got, e.alert.Labels["alertname"])
				// The newest state of each alert is kept.
				if last := strings.LastIndex(strings.Join(tc.send, ""), e.alert.Labels["alertname"]); e.alert.Annotations["seq"] != string(rune('0'+last)) {
					t.Errorf("%s: kept state %s, want the newest, %d", e.alert.Labels["alertname"], e.alert.Annotations["seq"], last)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("queued %v, want %v", got, tc.want)
			}
			m := n.targets[0].metrics
			if got := counter(t, m.queueFull); got != tc.wantDrops {
				t.Errorf("dropped{queue_full} = %v, want %v", got, tc.wantDrops)
			}
			if got := counter(t, m.queueLength); got != float64(len(tc.want)) {
				t.Errorf("queue_length = %v, want %d", got, len(tc.want))
			}
		})
	}
}

// TestAckKeepsNewerState: an alert whose state changed while a batch was
// on its way stays queued in the new state.
func TestAckKeepsNewerState(t *testing.T) {
	n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}})
	n.Send(alert("A"), alert("B"))
	q := n.targets[0].queue
	batch := q.peek(10)
	resolved := alert("A")
	resolved.EndsAt = t0
	n.Send(resolved)
	q.ack(batch)
	got := q.peek(10)
	if len(got) != 1 || got[0].alert.Labels["alertname"] != "A" || !got[0].alert.EndsAt.Equal(t0) {
		t.Errorf("after ack: %+v, want only A's newer state", got)
	}
}

func TestInvalidAlertsRefused(t *testing.T) {
	cases := []struct {
		name  string
		alert Alert
	}{
		{"no labels", Alert{}},
		{"no alertname", Alert{Labels: map[string]string{"slo": "x"}}},
		{"empty label name", Alert{Labels: map[string]string{"alertname": "A", "": "x"}}},
		{"bad UTF-8 value", Alert{Labels: map[string]string{"alertname": "A", "x": "\xff"}}},
		{"bad UTF-8 annotation", Alert{Labels: map[string]string{"alertname": "A"}, Annotations: map[string]string{"x": "\xff"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}})
			n.Send(tc.alert)
			n.Update([]Alert{tc.alert, alert("ok")})
			if got := n.targets[0].queue.len(); got != 1 {
				t.Errorf("queued %d alerts, want only the valid one", got)
			}
			if got := counter(t, n.targets[0].metrics.rejected); got != 2 {
				t.Errorf("dropped{rejected} = %v, want 2", got)
			}
		})
	}
}

// TestBatching: a backlog goes out in requests of at most 64 alerts, as
// Alertmanager's v2 payload.
func TestBatching(t *testing.T) {
	am := newFakeAM(t)
	clock := newClock()
	n, _ := newTestNotifier(t, Options{URLs: []string{am.srv.URL}, Now: clock.Now})
	var active []Alert
	for i := range 150 {
		a := alert("Burn", "slo", "slo-"+string(rune('a'+i/26))+string(rune('a'+i%26)))
		a.GeneratorURL = "http://slogate/api/v1/slos/x"
		active = append(active, a)
	}
	n.Update(active) // before Run: the whole backlog is queued at once
	run(t, n)
	eventually(t, 10*time.Second, "150 alerts", func() bool { return len(am.received()) >= 150 })

	var sizes []int
	for _, r := range am.reqs() {
		sizes = append(sizes, len(r.alerts))
		if r.method != http.MethodPost || r.path != "/api/v2/alerts" || r.contentType != "application/json" {
			t.Errorf("request %s %s (%s), want POST /api/v2/alerts (application/json)", r.method, r.path, r.contentType)
		}
	}
	if want := []int{64, 64, 22}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	seen := map[string]bool{}
	for _, a := range am.received() {
		seen[a.Labels["slo"]] = true
	}
	if len(seen) != 150 {
		t.Errorf("%d distinct alerts arrived, want 150", len(seen))
	}

	// The wire format, field by field.
	var raw []map[string]any
	if err := json.Unmarshal(am.reqs()[0].raw, &raw); err != nil {
		t.Fatal(err)
	}
	first := raw[0]
	for _, k := range []string{"labels", "annotations", "startsAt", "endsAt", "generatorURL"} {
		if _, ok := first[k]; !ok {
			t.Errorf("payload lacks %q: %v", k, first)
		}
	}
	for k, want := range map[string]time.Time{"startsAt": t0, "endsAt": t0.Add(4 * time.Minute)} {
		s, _ := first[k].(string)
		got, err := time.Parse(time.RFC3339, s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s = %q, want RFC3339 %s", k, s, want.Format(time.RFC3339))
		}
	}
}

// TestDelivery: which answers are retried and which drop the alert.
func TestDelivery(t *testing.T) {
	cases := []struct {
		name         string
		statuses     []int
		wantSent     float64
		wantFailed   float64
		wantRejected float64
	}{
		{name: "accepted", statuses: nil, wantSent: 1},
		{name: "5xx retried", statuses: []int{503, 500, 502}, wantSent: 1, wantFailed: 3},
		{name: "429 retried", statuses: []int{429}, wantSent: 1, wantFailed: 1},
		{name: "408 retried", statuses: []int{408}, wantSent: 1, wantFailed: 1},
		{name: "400 dropped", statuses: []int{400}, wantRejected: 1},
		{name: "404 dropped", statuses: []int{404}, wantRejected: 1},
		{name: "422 after a 503", statuses: []int{503, 422}, wantFailed: 1, wantRejected: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			am := newFakeAM(t, tc.statuses...)
			n, _ := newTestNotifier(t, Options{URLs: []string{am.srv.URL}})
			run(t, n)
			n.Send(alert("A"))
			m := n.targets[0].metrics
			eventually(t, 10*time.Second, "the alert to be delivered or dropped", func() bool {
				return counter(t, m.sent)+counter(t, m.rejected) >= 1
			})
			// The sender goes on: a later alert is delivered.
			n.Send(alert("B"))
			eventually(t, 10*time.Second, "B", func() bool {
				return counter(t, m.sent) >= tc.wantSent+1 && n.targets[0].queue.len() == 0
			})
			if !slices.ContainsFunc(am.received(), func(a postableAlert) bool { return a.Labels["alertname"] == "B" }) {
				t.Errorf("B not received: %v", am.received())
			}
			if got := counter(t, m.sent); got != tc.wantSent+1 {
				t.Errorf("sent = %v, want %v", got, tc.wantSent+1)
			}
			if got := counter(t, m.failed); got != tc.wantFailed {
				t.Errorf("failed = %v, want %v", got, tc.wantFailed)
			}
			if got := counter(t, m.rejected); got != tc.wantRejected {
				t.Errorf("dropped{rejected} = %v, want %v", got, tc.wantRejected)
			}
			if got := counter(t, m.queueLength); got != 0 {
				t.Errorf("queue_length = %v, want 0", got)
			}
		})
	}
}

// TestOneDeadAlertmanager: each URL has its own queue; a dead one holds up
// nothing for the other.
func TestOneDeadAlertmanager(t *testing.T) {
	alive := newFakeAM(t)
	dead := newFakeAM(t)
	dead.setDown(true)
	n, _ := newTestNotifier(t, Options{URLs: []string{dead.srv.URL, alive.srv.URL}})
	run(t, n)
	n.Update([]Alert{alert("A")})
	eventually(t, 5*time.Second, "A at the live Alertmanager", func() bool { return len(alive.received()) == 1 })
	n.Update([]Alert{alert("A"), alert("B")})
	eventually(t, 5*time.Second, "B at the live Alertmanager", func() bool { return len(alive.received()) == 2 })
	deadM := n.targets[0].metrics
	eventually(t, 5*time.Second, "failures counted", func() bool { return counter(t, deadM.failed) >= 2 })
	if got := counter(t, deadM.queueLength); got != 2 {
		t.Errorf("dead Alertmanager's queue_length = %v, want 2", got)
	}

	// Back: it gets both.
	dead.setDown(false)
	eventually(t, 5*time.Second, "both at the revived Alertmanager", func() bool {
		got := map[string]bool{}
		for _, a := range dead.received() {
			got[a.Labels["alertname"]] = true
		}
		return got["A"] && got["B"]
	})
}

// TestResendAfterOutage: when an Alertmanager answers again after
// failures, every firing alert is sent to it again at once, since a
// restarted Alertmanager has forgotten them; it does not wait for
// ResendDelay.
func TestResendAfterOutage(t *testing.T) {
	am := newFakeAM(t)
	clock := newClock()
	n, _ := newTestNotifier(t, Options{URLs: []string{am.srv.URL}, Now: clock.Now, ResendDelay: time.Hour})
	run(t, n)
	n.Update([]Alert{alert("A")})
	eventually(t, 5*time.Second, "A", func() bool { return len(am.received()) == 1 })

	am.setDown(true)
	n.Update([]Alert{alert("A"), alert("B")})
	eventually(t, 5*time.Second, "a failure", func() bool { return counter(t, n.targets[0].metrics.failed) >= 1 })
	am.setDown(false)
	eventually(t, 5*time.Second, "B, then A again", func() bool {
		var names []string
		for _, a := range am.received() {
			names = append(names, a.Labels["alertname"])
		}
		return slices.Equal(names, []string{"A", "B", "A", "B"}) || slices.Equal(names, []string{"A", "B", "B", "A"})
	})
}

// TestShutdownFlush: what is queued when Run's context ends gets one more
// attempt, even if the sender was waiting to retry.
func TestShutdownFlush(t *testing.T) {
	am := newFakeAM(t, http.StatusServiceUnavailable)
	n, _ := newTestNotifier(t, Options{URLs: []string{am.srv.URL}})
	n.backoffMin, n.backoffMax = time.Hour, time.Hour
	stop := run(t, n)
	n.Send(alert("A"))
	eventually(t, 5*time.Second, "the first attempt to fail", func() bool { return counter(t, n.targets[0].metrics.failed) == 1 })
	stop()
	if got := am.received(); len(got) != 1 || got[0].Labels["alertname"] != "A" {
		t.Errorf("after shutdown the Alertmanager has %v, want A", got)
	}
}

// TestShutdownFlushBounded: a hanging Alertmanager does not hold up
// shutdown longer than the flush timeout.
func TestShutdownFlushBounded(t *testing.T) {
	release := make(chan struct{})
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(am.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for handlers
	n, _ := newTestNotifier(t, Options{URLs: []string{am.URL}, Timeout: time.Minute})
	n.flushTimeout = 200 * time.Millisecond
	n.Send(alert("A"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shut down at once: only the flush runs
	start := time.Now()
	if err := n.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %s to return, want about the 200ms flush timeout", d)
	}
	if got := n.targets[0].queue.len(); got != 1 {
		t.Errorf("queue holds %d alerts, want the undelivered 1", got)
	}
}

func TestRunTwice(t *testing.T) {
	n, _ := newTestNotifier(t, Options{})
	run(t, n)
	eventually(t, time.Second, "Run to start", func() bool { return n.running.Load() })
	if err := n.Run(context.Background()); err == nil {
		t.Error("second Run: no error")
	}
}

// TestLogMode: without Alertmanagers the log is where alerts go.
func TestLogMode(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	n, _ := newTestNotifier(t, Options{Logger: zap.New(core)})
	run(t, n)
	n.Update([]Alert{alert("A", "slo", "checkout")})
	n.Update([]Alert{alert("A", "slo", "checkout")})
	n.Update(nil)
	n.Send(alert("ChaosExperimentAborted"))
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Message+" "+e.ContextMap()["alertname"].(string))
	}
	want := []string{"alert firing A", "alert resolved A", "alert sent ChaosExperimentAborted"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

func TestMetricNames(t *testing.T) {
	_, reg := newTestNotifier(t, Options{URLs: []string{"http://am.invalid:9093"}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()] = append(got[mf.GetName()], strings.Join(labels, ","))
		}
	}
	want := map[string][]string{
		"slogate_alerts_sent_total":      {"alertmanager=http://am.invalid:9093"},
		"slogate_alerts_failed_total":    {"alertmanager=http://am.invalid:9093"},
		"slogate_alerts_dropped_total":   {"alertmanager=http://am.invalid:9093,reason=queue_full", "alertmanager=http://am.invalid:9093,reason=rejected"},
		"slogate_alerts_queue_length":    {"alertmanager=http://am.invalid:9093"},
		"slogate_alerts_latency_seconds": {"alertmanager=http://am.invalid:9093"},
	}
	for name, series := range want {
		slices.Sort(got[name])
		if !slices.Equal(got[name], series) {
			t.Errorf("%s: series %q, want %q", name, got[name], series)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metric families %v, want %d", got, len(want))
	}
}
