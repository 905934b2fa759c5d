package evaluator

import (
	"runtime"
	"sync"
	"unsafe"
)

// The slots of the rings are most of what slogate holds: a few thousand per
// SLO, about 20 KB, 200 MB at 10,000 SLOs, and they live as long as the SLO.
// On the Go heap the garbage collector lets the heap grow to twice what is
// live before it collects (GOGC=100), so every byte of slots costs two of
// RSS, although slots hold no pointers and are never garbage until their
// SLO goes. They are therefore kept outside the Go heap, in chunks of
// memory mapped from the operating system (mapChunk, per platform), and
// handed out by capacity: the collector neither scans them nor counts them
// towards its next collection, and RSS holds each slot once.
//
// A ring's slots go back to the pool when the ring is unreachable (a
// cleanup attached to the ring), so no reader can still hold them: every
// access to slots goes through a ring method that keeps the ring alive
// until the access is done (runtime.KeepAlive in put and get).

// slotChunk is the size of the memory mapped at a time.
const slotChunk = 4 << 20

// slotPool hands out slot arrays outside the Go heap.
type slotPool struct {
	mu   sync.Mutex
	free map[int][][]slot // released arrays by length
	rest []byte           // what is left of the newest chunk
	// mapped is the memory mapped so far, inUse what is handed out of it,
	// in bytes.
	mapped, inUse int
}

var slots = &slotPool{free: map[int][][]slot{}}

// alloc returns n zeroed slots, outside the Go heap (pooled) when it can;
// only pooled slots go back with release.
func (p *slotPool) alloc(n int) (s []slot, pooled bool) {
	size := n * int(unsafe.Sizeof(slot{}))
	if n == 0 || size > slotChunk/4 {
		return make([]slot, n), false // rare shapes: not worth a chunk
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if list := p.free[n]; len(list) > 0 {
		s := list[len(list)-1]
		p.free[n] = list[:len(list)-1]
		p.inUse += size
		clear(s)
		return s, true
	}
	if len(p.rest) < size {
		chunk, err := mapChunk(slotChunk)
		if err != nil {
			return make([]slot, n), false // no mapping here: the Go heap will do
		}
		p.rest = chunk
		p.mapped += slotChunk
	}
	s = unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(p.rest))), n)
	p.rest = p.rest[size:]
	p.inUse += size
	return s, true // fresh mappings are zeroed
}

// release takes back slots from alloc.
func (p *slotPool) release(s []slot) {
	p.mu.Lock()
	p.free[len(s)] = append(p.free[len(s)], s)
	p.inUse -= len(s) * int(unsafe.Sizeof(slot{}))
	p.mu.Unlock()
}

// SlotMemory returns the bytes of ring slots held outside the Go heap:
// mapped from the system, and handed out to rings now.
func SlotMemory() (mapped, inUse int) {
	slots.mu.Lock()
	defer slots.mu.Unlock()
	return slots.mapped, slots.inUse
}

// newRingSlots gives r slots of capacity n and returns them to the pool
// once r is unreachable.
func newRingSlots(r *ring, n int) {
	var pooled bool
	if r.slots, pooled = slots.alloc(n); pooled {
		runtime.AddCleanup(r, slots.release, r.slots)
	}
}
