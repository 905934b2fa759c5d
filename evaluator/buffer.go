package evaluator

import (
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// slot is one ring position, kept small because every SLO holds a few
// thousand of them: float32 counts carry 24 bits of mantissa, a relative
// error of 6e-8 per slice that the float64 sums do not accumulate, and the
// slice number fits 32 bits for any interval of a second or more until 2106.
type slot struct {
	bad, total float32
	k          uint32 // slice number held; 0 = empty
}

// ring holds the event counts of consecutive, aligned time slices: slice k
// covers ((k-1)·step, k·step] in Unix time. A slot remembers which slice it
// holds, so a slot left over from an older slice reads as missing and no
// shifting is needed when time moves on.
type ring struct {
	step  time.Duration
	slots []slot
}

func newRing(step time.Duration, capacity int) *ring {
	return &ring{step: step, slots: make([]slot, capacity)}
}

// storable reports whether slice number k fits a slot.
func storable(k int64) bool { return k > 0 && k <= math.MaxUint32 }

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

func (r *ring) put(k int64, c slo.Counts) {
	if !storable(k) {
		return
	}
	r.slots[r.slot(k)] = slot{bad: float32(c.Bad), total: float32(c.Total), k: uint32(k)}
}

func (r *ring) get(k int64) (slo.Counts, bool) {
	if !storable(k) {
		return slo.Counts{}, false
	}
	s := r.slots[r.slot(k)]
	if s.k != uint32(k) {
		return slo.Counts{}, false
	}
	return slo.Counts{Bad: float64(s.bad), Total: float64(s.total)}, true
}

// has reports whether slice k is held.
func (r *ring) has(k int64) bool { return storable(k) && r.slots[r.slot(k)].k == uint32(k) }

// each calls fn for every slice held, in slot order.
func (r *ring) each(fn func(k int64, c slo.Counts)) {
	for _, s := range r.slots {
		if s.k != 0 {
			fn(int64(s.k), slo.Counts{Bad: float64(s.bad), Total: float64(s.total)})
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
