package dispatch

// AttempterStarts is the number of attempt goroutines started so far.
func AttempterStarts() int64 { return attempterStarts.Load() }
