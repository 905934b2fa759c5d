package evaluator

import (
	"time"
)

// counts are the events of one time slice.
type counts struct {
	bad, total float64
}

// ring holds the event counts of consecutive, aligned time slices: slice k
// covers ((k-1)·step, k·step] in Unix time. A slot remembers which slice it
// holds, so a slot left over from an older slice reads as missing and no
// shifting is needed when time moves on.
type ring struct {
	step  time.Duration
	slots []counts
	index []int64 // slice number held by each slot; 0 = empty
}

func newRing(step time.Duration, capacity int) *ring {
	return &ring{step: step, slots: make([]counts, capacity), index: make([]int64, capacity)}
}

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

func (r *ring) put(k int64, c counts) {
	i := r.slot(k)
	r.slots[i] = c
	r.index[i] = k
}

func (r *ring) get(k int64) (counts, bool) {
	i := r.slot(k)
	if r.index[i] != k {
		return counts{}, false
	}
	return r.slots[i], true
}

// has reports whether slice k is held.
func (r *ring) has(k int64) bool { return r.index[r.slot(k)] == k }

// sum adds the slices overlapping (from, to]; a slice only partly inside is
// weighted by the share of it that is inside (events are assumed evenly
// spread within a slice). missing counts the slices that should be there
// but are not, weighted the same way.
func (r *ring) sum(from, to time.Time) (c counts, missing float64) {
	if !to.After(from) {
		return counts{}, 0
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
		c.bad += v.bad * w
		c.total += v.total * w
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
