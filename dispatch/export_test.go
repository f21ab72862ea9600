package dispatch

// AttempterStarts is the number of attempt goroutines started so far.
func AttempterStarts() int64 { return attempterStarts.Load() }

// QueuePasses is the number of fill passes (and read-aheads) of a
// configured webhook's queue so far.
func QueuePasses(d *Dispatcher, webhook string) uint64 {
	d.qmu.Lock()
	q := d.queues[queueKey{webhook: webhook}]
	d.qmu.Unlock()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pass
}
