package notifier

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/internal/faultproxy"
	"github.com/slogate/slogate/internal/testenv"
)

// Faults between the notifier and a real Alertmanager, put there by
// internal/faultproxy (Alertmanager down is TestAlertmanagerOutage's).

// TestAlertmanagerFaults: while Alertmanager answers slower than the
// notifier's timeout, or with a 5xx, nothing is lost: alerts wait in the
// queue (failed attempts counted, nothing dropped) and all of them, the
// resolve of one that ended during the fault included, reach Alertmanager
// once it answers again.
func TestAlertmanagerFaults(t *testing.T) {
	cases := []struct {
		name   string
		inject func(p *faultproxy.Proxy)
	}{
		{"slower than the timeout", func(p *faultproxy.Proxy) { p.Slow(2 * time.Second) }},
		{"hanging", func(p *faultproxy.Proxy) { p.Hang() }},
		{"500", func(p *faultproxy.Proxy) { p.Status(http.StatusInternalServerError, "internal error") }},
		{"503", func(p *faultproxy.Proxy) { p.Status(http.StatusServiceUnavailable, `{"error":"unavailable"}`) }},
		{"502 from a proxy in front", func(p *faultproxy.Proxy) { p.Status(http.StatusBadGateway, "<html>bad gateway</html>") }},
		{"429 rate limited", func(p *faultproxy.Proxy) { p.Status(http.StatusTooManyRequests, "slow down") }},
		{"connections reset", func(p *faultproxy.Proxy) { p.Drop() }},
	}
	hook := newWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{WebhookURL: hook.srv.URL})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy := faultproxy.New(t, am.URL())
			n, _ := newTestNotifier(t, Options{URLs: []string{proxy.URL()}, Timeout: 500 * time.Millisecond, ResendDelay: time.Hour})
			run(t, n)
			m := n.targets[0].metrics

			// Distinct per case: Alertmanager keeps the alerts of the
			// previous cases.
			id := fmt.Sprint(i)
			steady := alert("SLOErrorBudgetBurn", "slo", "steady-"+id, "severity", "ticket")
			resolving := alert("SLOErrorBudgetBurn", "slo", "resolving-"+id, "severity", "page")
			starting := alert("SteadyStateViolated", "hypothesis", "starting-"+id, "severity", "warning")
			aborted := alert("ChaosExperimentAborted", "experiment", "kill-pod", "run", "run-"+id)
			aborted.EndsAt = time.Now().Add(time.Hour)

			n.Update([]Alert{steady, resolving})
			for _, a := range []Alert{steady, resolving} {
				eventually(t, amWait, a.Labels["slo"]+" notified", func() bool { return hook.notified("firing", a.Labels) })
			}
			// Alertmanager logs the notification after the webhook
			// answered; it needs the entry to notify the resolve.
			for _, a := range []Alert{steady, resolving} {
				notificationLogged(t, am, a)
			}
			sentBefore := counter(t, m.sent)

			tc.inject(proxy)
			requests := proxy.Requests()
			n.Update([]Alert{steady, starting})
			n.Send(aborted)
			eventually(t, amWait, "delivery to fail twice", func() bool { return counter(t, m.failed) >= 2 })
			if proxy.Requests() == requests {
				t.Fatal("no request reached the fault")
			}
			if got := n.targets[0].queue.len(); got != 3 {
				t.Errorf("%d alerts queued during the fault, want 3 (the new one, the resolve, the one-shot)", got)
			}
			if got := counter(t, m.sent); got != sentBefore {
				t.Errorf("%v alerts counted as sent during the fault", got-sentBefore)
			}

			proxy.Pass()
			eventually(t, amWait, "the new alert", func() bool { return listed(t, am, starting.Labels) != nil })
			eventually(t, amWait, "the one-shot alert", func() bool { return listed(t, am, aborted.Labels) != nil })
			eventually(t, amWait, "the alert that kept firing", func() bool { return listed(t, am, steady.Labels) != nil })
			eventually(t, amWait, "the resolve", func() bool { return hook.notified("resolved", resolving.Labels) })
			eventually(t, amWait, "the queue to empty", func() bool { return n.targets[0].queue.len() == 0 })
			if got := counter(t, m.queueFull) + counter(t, m.rejected); got != 0 {
				t.Errorf("%v alerts dropped", got)
			}
			t.Logf("RELIABILITY kind=alertmanager-fault fault=%q failed_attempts=%v delivered_after_recovery=4 dropped=0",
				tc.name, counter(t, m.failed))
		})
	}
}

// TestAlertmanagerQueueBound: while Alertmanager fails, a queue holding
// fewer alerts than are waiting drops the oldest, and counts each in
// slogate_alerts_dropped_total{reason="queue_full"}; once Alertmanager
// answers, exactly the alerts that were not counted as dropped arrive.
//
// The sender is kept in its retry wait (an hour) while the queue overflows,
// so that no batch is in flight: an alert that is dropped from the queue
// while a batch holding it is being sent may still arrive, which would make
// the count of lost alerts a matter of timing. The final flush at shutdown
// then delivers the queue.
func TestAlertmanagerQueueBound(t *testing.T) {
	const capacity = 4
	am := testenv.StartAlertmanager(t, testenv.AMOptions{})
	proxy := faultproxy.New(t, am.URL())
	n, reg := newTestNotifier(t, Options{URLs: []string{proxy.URL()}, QueueCapacity: capacity, ResendDelay: time.Hour})
	n.backoffMin, n.backoffMax = time.Hour, time.Hour
	proxy.Status(http.StatusServiceUnavailable, "unavailable")
	stop := run(t, n)
	m := n.targets[0].metrics

	first := alert("ChaosExperimentAborted", "experiment", "kill-pod", "run", "run-first")
	first.EndsAt = time.Now().Add(time.Hour)
	n.Send(first)
	eventually(t, amWait, "a failed attempt", func() bool { return counter(t, m.failed) >= 1 })
	// The sender waits for its retry now.

	oneShots := []Alert{first}
	for i := range 10 {
		a := alert("ChaosExperimentAborted", "experiment", "kill-pod", "run", fmt.Sprintf("run-%02d", i))
		a.EndsAt = time.Now().Add(time.Hour)
		oneShots = append(oneShots, a)
		n.Send(a)
	}
	firing := []Alert{
		alert("SLOErrorBudgetBurn", "slo", "slo-0", "severity", "page"),
		alert("SLOErrorBudgetBurn", "slo", "slo-1", "severity", "page"),
	}
	n.Update(firing)
	queued := len(oneShots) + len(firing)
	dropped := queued - capacity
	if got := counter(t, m.queueFull); got != float64(dropped) {
		t.Fatalf("dropped{queue_full} = %v after queueing %d alerts into %d places, want %d", got, queued, capacity, dropped)
	}
	if got := n.targets[0].queue.len(); got != capacity {
		t.Errorf("queue holds %d alerts, want its capacity %d", got, capacity)
	}
	// The metric as exported, by name and reason.
	if got := gathered(t, reg, "slogate_alerts_dropped_total", "queue_full"); got != float64(dropped) {
		t.Errorf("slogate_alerts_dropped_total{reason=\"queue_full\"} exported as %v, want %d", got, dropped)
	}

	proxy.Pass()
	stop() // the final flush sends the queue
	kept := append(oneShots[dropped:], firing...)
	for _, a := range kept {
		if listed(t, am, a.Labels) == nil {
			t.Errorf("alert %v was not dropped but did not arrive", a.Labels)
		}
	}
	for _, a := range oneShots[:dropped] {
		if listed(t, am, a.Labels) != nil {
			t.Errorf("alert %v arrived although the full queue dropped it", a.Labels)
		}
	}
	if got := counter(t, m.sent); got != float64(len(kept)) {
		t.Errorf("%v alerts counted as sent, want %d", got, len(kept))
	}
	if got := counter(t, m.rejected); got != 0 {
		t.Errorf("%v alerts rejected", got)
	}
	t.Logf("RELIABILITY kind=alertmanager-queue-bound capacity=%d queued=%d dropped=%d dropped_counted=%v delivered=%d",
		capacity, queued, dropped, counter(t, m.queueFull), len(kept))
}

// gathered is the value of the counter name with label reason in reg.
func gathered(t *testing.T, reg prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == reason {
				return mt.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{reason=%q} not exported", name, reason)
	return 0
}
