package evaluator

import (
	"runtime"
	"time"

	"github.com/slogate/slogate/slo"
)

// slot is one ring position, kept small because every SLO holds a few
// thousand of them: float32 counts carry 24 bits of mantissa, a relative
// error of 6e-8 per slice that the float64 sums do not accumulate. Which
// slice a slot holds follows from the ring's newest slice (head), so a
// slot is 8 bytes and a bit.
type slot struct {
	bad, total float32
}

// ring holds the event counts of the newest len(slots) consecutive,
// aligned time slices up to head: slice k covers ((k-1)·step, k·step] in
// Unix time and sits in slot k mod len(slots) while head-len(slots) < k <=
// head; valid says which of those were stored. Slices older than that
// window are not kept (a late answer about them cannot evict a newer one),
// and moving head on forgets the slots it passes, so no shifting is needed
// when time moves on.
type ring struct {
	step  time.Duration
	slots []slot
	valid []uint64 // a bit per slot
	head  int64    // newest slice stored; 0: none
}

// newRing returns a ring of capacity slices of step; its slots are outside
// the Go heap (slotmem.go).
func newRing(step time.Duration, capacity int) *ring {
	r := &ring{step: step, valid: make([]uint64, (capacity+63)/64)}
	newRingSlots(r, capacity)
	return r
}

// reset empties the ring.
func (r *ring) reset() {
	r.head = 0
	clear(r.valid)
}

// storable reports whether slice number k can be a slice at all.
func storable(k int64) bool { return k > 0 }

// sliceOf returns the number of the slice whose end is at or after t.
func (r *ring) sliceOf(t time.Time) int64 {
	s := int64(r.step)
	n := t.UnixNano()
	k := n / s
	if n%s != 0 {
		k++
	}
	return k
}

// end returns the end time of slice k.
func (r *ring) end(k int64) time.Time { return time.Unix(0, k*int64(r.step)) }

func (r *ring) slot(k int64) int {
	n := int64(len(r.slots))
	return int(((k % n) + n) % n)
}

func (r *ring) setValid(i int, v bool) {
	if v {
		r.valid[i/64] |= 1 << (i % 64)
	} else {
		r.valid[i/64] &^= 1 << (i % 64)
	}
}

// inWindow reports whether slice k is within the slices the ring can hold.
func (r *ring) inWindow(k int64) bool {
	return r.head > 0 && k <= r.head && k > r.head-int64(len(r.slots))
}

func (r *ring) put(k int64, c slo.Counts) {
	if !storable(k) || len(r.slots) == 0 {
		return
	}
	n := int64(len(r.slots))
	switch {
	case r.head == 0 || k-r.head >= n:
		clear(r.valid)
		r.head = k
	case k > r.head:
		for j := r.head + 1; j < k; j++ {
			r.setValid(r.slot(j), false)
		}
		r.head = k
	case k <= r.head-n:
		return // older than everything the ring holds
	}
	i := r.slot(k)
	r.slots[i] = slot{bad: float32(c.Bad), total: float32(c.Total)}
	r.setValid(i, true)
	runtime.KeepAlive(r) // the slots go back to the pool once r is gone
}

func (r *ring) get(k int64) (slo.Counts, bool) {
	if !r.has(k) {
		return slo.Counts{}, false
	}
	s := r.slots[r.slot(k)]
	runtime.KeepAlive(r) // the slots go back to the pool once r is gone
	return slo.Counts{Bad: float64(s.bad), Total: float64(s.total)}, true
}

// has reports whether slice k is held.
func (r *ring) has(k int64) bool {
	if !storable(k) || !r.inWindow(k) {
		return false
	}
	i := r.slot(k)
	return r.valid[i/64]&(1<<(i%64)) != 0
}

// each calls fn for every slice held, oldest first.
func (r *ring) each(fn func(k int64, c slo.Counts)) {
	if r.head == 0 {
		return
	}
	for k := max(1, r.head-int64(len(r.slots))+1); k <= r.head; k++ {
		if c, ok := r.get(k); ok {
			fn(k, c)
		}
	}
}

// sum adds the slices overlapping (from, to]; a slice only partly inside is
// weighted by the share of it that is inside (events are assumed evenly
// spread within a slice). missing counts the slices that should be there
// but are not, weighted the same way.
func (r *ring) sum(from, to time.Time) (c slo.Counts, missing float64) {
	if !to.After(from) {
		return slo.Counts{}, 0
	}
	first, last := r.sliceOf(from.Add(1)), r.sliceOf(to)
	step := float64(r.step)
	for k := first; k <= last; k++ {
		startK := r.end(k - 1)
		endK := r.end(k)
		w := 1.0
		if startK.Before(from) {
			w -= float64(from.Sub(startK)) / step
		}
		if endK.After(to) {
			w -= float64(endK.Sub(to)) / step
		}
		if w <= 0 {
			continue
		}
		v, ok := r.get(k)
		if !ok {
			missing += w
			continue
		}
		c.Bad += v.Bad * w
		c.Total += v.Total * w
	}
	return c, missing
}

// missingIn lists the runs of missing slices in [first, last] as [a, b]
// pairs, so that each run can be fetched with one range query.
func (r *ring) missingIn(first, last int64) [][2]int64 {
	var runs [][2]int64
	for k := first; k <= last; k++ {
		if r.has(k) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][1] == k-1 {
			runs[n-1][1] = k
		} else {
			runs = append(runs, [2]int64{k, k})
		}
	}
	return runs
}
