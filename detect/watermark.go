package detect

// The watermark of a shard is its newest event time minus a lateness
// that follows what the partition shows: each shard measures how far
// behind its newest event time records arrive (their disorder) and
// allows twice the largest disorder of its last lateWindows windows,
// bounded by detect.min_lateness and detect.allowed_lateness. A shard
// that has not yet measured lateWarmup windows (a start, a restore)
// allows the most. A record later than the lateness is late, and its
// disorder raises the lateness of the windows after it.

const (
	lateWindows = 30 // five minutes of 10 s windows
	lateWarmup  = 6
)

// disorder keeps the largest disorder of each of the last windows.
type disorder struct {
	ring [lateWindows]int64
	n    int   // windows measured, up to lateWindows
	cur  int64 // the largest disorder since the last roll, ms
}

func (o *disorder) observe(ms int64) {
	if ms > o.cur {
		o.cur = ms
	}
}

// roll ends the current measurement; called once per window closed.
func (o *disorder) roll() {
	copy(o.ring[1:], o.ring[:lateWindows-1])
	o.ring[0] = o.cur
	o.cur = 0
	o.n = min(o.n+1, lateWindows)
}

// latenessMs is the shard's current lateness, ms.
func (s *shard) latenessMs() int64 {
	cfg := &s.det.cfg
	hi, lo := cfg.AllowedLateness.Milliseconds(), cfg.MinLateness.Milliseconds()
	if lo >= hi || s.disorder.n < lateWarmup {
		return hi
	}
	worst := s.disorder.cur
	for _, v := range s.disorder.ring[:s.disorder.n] {
		worst = max(worst, v)
	}
	return max(lo, min(hi, 2*worst))
}
