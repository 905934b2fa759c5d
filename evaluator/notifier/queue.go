package notifier

import (
	"container/list"
	"sync"
)

// queue holds the alerts waiting for one Alertmanager, oldest first, at
// most one entry per label set: when an alert is queued again before the
// previous state went out, only the newest state is kept (a resolve
// replaces the firing it follows), and it moves to the back, since it is
// now the newest news. When the queue is full, the oldest entries go.
//
// Entries are taken out only once delivered (ack): the sender peeks at a
// batch, and if a newer state of one of its alerts arrived meanwhile, the
// ack leaves that newer state in place to be sent next.
type queue struct {
	capacity int
	metrics  *targetMetrics

	mu    sync.Mutex
	seq   uint64
	order *list.List               // of *entry, oldest first
	byFP  map[string]*list.Element // fingerprint → element of order
	// wake has room for one signal: the sender needs to know that
	// something arrived, not how often.
	wake chan struct{}
}

type entry struct {
	queued
	seq uint64 // tells a newer state of the same alert from this one
}

func newQueue(capacity int, m *targetMetrics) *queue {
	return &queue{
		capacity: capacity,
		metrics:  m,
		order:    list.New(),
		byFP:     map[string]*list.Element{},
		wake:     make(chan struct{}, 1),
	}
}

// push adds alerts at the back, replacing queued states of the same alerts,
// and drops the oldest entries beyond capacity.
func (q *queue) push(alerts []queued) {
	if len(alerts) == 0 {
		return
	}
	q.mu.Lock()
	dropped := 0
	for _, a := range alerts {
		if el, ok := q.byFP[a.fp]; ok {
			q.order.Remove(el)
		}
		q.seq++
		q.byFP[a.fp] = q.order.PushBack(&entry{queued: a, seq: q.seq})
		for q.order.Len() > q.capacity {
			oldest := q.order.Front()
			q.order.Remove(oldest)
			delete(q.byFP, oldest.Value.(*entry).fp)
			dropped++
		}
	}
	q.metrics.queueLength.Set(float64(q.order.Len()))
	q.mu.Unlock()
	if dropped > 0 {
		q.metrics.queueFull.Add(float64(dropped))
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// peek returns up to n of the oldest entries, leaving them queued.
func (q *queue) peek(n int) []*entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*entry, 0, min(n, q.order.Len()))
	for el := q.order.Front(); el != nil && len(out) < n; el = el.Next() {
		out = append(out, el.Value.(*entry))
	}
	return out
}

// ack removes the entries of a batch that are still queued in the state
// that was sent; newer states of the same alerts stay.
func (q *queue) ack(batch []*entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range batch {
		el, ok := q.byFP[e.fp]
		if !ok || el.Value.(*entry).seq != e.seq {
			continue
		}
		q.order.Remove(el)
		delete(q.byFP, e.fp)
	}
	q.metrics.queueLength.Set(float64(q.order.Len()))
}

// len is the number of queued alerts.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.order.Len()
}
