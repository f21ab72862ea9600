package dispatch

import (
	"fmt"
	"testing"
)

// TestQueue_AppendReady: rows appended while fill takes them from the
// front come out in order, and the ready list reuses its array (it would
// otherwise be reallocated every time it reached the array's end).
func TestQueue_AppendReady(t *testing.T) {
	q := &queue{}
	next, taken := 0, 0
	arrays := map[*Delivery]bool{}
	for round := range 200 {
		for range 7 {
			q.appendReady(Delivery{NewDelivery: NewDelivery{ID: fmt.Sprint(next)}})
			next++
		}
		// The array's last element names it (q.ready moves along it).
		arrays[&q.ready[:cap(q.ready)][cap(q.ready)-1]] = true
		// Take 5 to 9 rows (fewer than appended, then more), as fill does.
		for range 5 + round%5 {
			if len(q.ready) == 0 {
				break
			}
			if got := q.ready[0].ID; got != fmt.Sprint(taken) {
				t.Fatalf("round %d: took %s, want %d", round, got, taken)
			}
			q.ready[0] = Delivery{}
			q.ready = q.ready[1:]
			taken++
		}
	}
	for _, d := range q.ready {
		if d.ID != fmt.Sprint(taken) {
			t.Fatalf("left %s, want %d", d.ID, taken)
		}
		taken++
	}
	if taken != next {
		t.Fatalf("%d rows out, %d in", taken, next)
	}
	if len(arrays) > 6 {
		t.Errorf("%d arrays used for a list of at most %d rows", len(arrays), cap(q.readyArr))
	}
	for i := len(q.ready); i < cap(q.ready); i++ {
		if q.ready[:cap(q.ready)][i].ID != "" {
			t.Fatalf("a taken row is still referenced at %d", i)
		}
	}
}
