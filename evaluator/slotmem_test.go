//go:build unix

package evaluator

import (
	"runtime"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// TestRingSlotsOffHeap checks that ring slots live outside the Go heap,
// that they go back to the pool once their ring is unreachable, and that
// a ring given released slots starts empty.
func TestRingSlotsOffHeap(t *testing.T) {
	p := &slotPool{free: map[int][][]slot{}}
	const n = 962
	s, pooled := p.alloc(n)
	if !pooled || len(s) != n || p.mapped != slotChunk {
		t.Fatalf("alloc(%d): pooled %v, %d slots, %d bytes mapped; want pooled, %d, %d", n, pooled, len(s), p.mapped, n, slotChunk)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc
	many := make([][]slot, 0, 400)
	for range 400 { // 3 MB of slots
		s, _ := p.alloc(n)
		s[n-1] = slot{bad: 1, total: 2}
		many = append(many, s)
	}
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapAlloc) - int64(heapBefore); grew > 1<<20 {
		t.Errorf("400 rings of %d slots grew the Go heap by %d bytes, want the slots outside it", n, grew)
	}
	for _, s := range many {
		p.release(s)
	}
	if got := len(p.free[n]); got != 400 {
		t.Fatalf("%d released arrays in the pool, want 400", got)
	}
	again, _ := p.alloc(n)
	if again[n-1] != (slot{}) {
		t.Errorf("a reused array holds %+v, want zero", again[n-1])
	}
	if len(p.free[n]) != 399 || p.mapped != slotChunk {
		t.Errorf("reuse: %d free, %d mapped; want 399 free and no new mapping", len(p.free[n]), p.mapped)
	}
	if big, pooled := p.alloc(slotChunk); pooled || len(big) != slotChunk {
		t.Errorf("an array larger than a quarter chunk: pooled %v, len %d; want the Go heap", pooled, len(big))
	}
}

// TestUnreachableRingReleasesSlots drops a ring and collects garbage until
// its cleanup has given the slots back to the pool.
func TestUnreachableRingReleasesSlots(t *testing.T) {
	const n = 4321 // a length no other ring of this package has
	r := newRing(time.Minute, n)
	r.put(5, slo.Counts{Bad: 1, Total: 3})
	if c, ok := r.get(5); !ok || c.Total != 3 {
		t.Fatalf("get(5) = %+v, %v", c, ok)
	}
	r = nil
	deadline := time.Now().Add(30 * time.Second)
	for free := 0; free == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the slots of an unreachable ring did not go back to the pool within 30 s of collections")
		}
		runtime.GC()
		runtime.Gosched()
		slots.mu.Lock()
		free = len(slots.free[n])
		slots.mu.Unlock()
	}
	r2 := newRing(time.Minute, n)
	if _, ok := r2.get(5); ok || r2.slots[r2.slot(5)] != (slot{}) {
		t.Error("a new ring on released slots sees the old ring's counts")
	}
	runtime.KeepAlive(r2)
}
