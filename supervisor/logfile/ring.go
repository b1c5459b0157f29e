package logfile

import "sync"

// ring is the bounded buffer between a stream's feeders (the pipe reader
// and in-process Write calls) and its disk writer. It starts small and
// doubles up to max when a feeder needs room, so quiet programs cost
// little memory.
//
// Feeders are serialized by Stream.feedMu; the writer is one goroutine.
// Positions are byte counts since the stream started: r is the next byte
// the writer takes, w the next byte a feeder fills, and w-r <= len(buf).
// The writer may hold [r, r+n) while it writes it out; that region stays
// counted as used until release.
type ring struct {
	mu       sync.Mutex // guards every field; a leaf lock (taken after Stream.feedMu)
	buf      []byte
	max      int
	r, w     uint64
	gaps     []gap // dropped output at positions >= r, in order
	dropping bool  // set when a feeder found the ring full; cleared once a quarter is free, so feeders wait or drop in batches
}

// gap records output dropped at position pos of the ring.
type gap struct {
	pos    uint64
	n      uint64
	reason string
}

func newRing(initial, max int) *ring {
	initial = min(initial, max)
	return &ring{buf: make([]byte, initial), max: max}
}

// freeLocked returns the bytes a feeder may fill, growing the buffer if
// fewer than want bytes are free, or 0 while the ring is dropping.
func (q *ring) freeLocked(want int) int {
	free := len(q.buf) - int(q.w-q.r)
	if free < want && len(q.buf) < q.max {
		q.growLocked(int(q.w-q.r) + want)
		free = len(q.buf) - int(q.w-q.r)
	}
	if q.dropping {
		if free < len(q.buf)/4 {
			return 0
		}
		q.dropping = false
	}
	return free
}

func (q *ring) growLocked(need int) {
	size := len(q.buf)
	for size < need && size < q.max {
		size *= 2
	}
	size = min(size, q.max)
	if size <= len(q.buf) {
		return
	}
	nb := make([]byte, size)
	// Copy the live bytes [r, w) to their new positions. A region the
	// writer holds keeps pointing at the old array, whose bytes stay valid.
	for pos := q.r; pos < q.w; {
		src := q.buf[pos%uint64(len(q.buf)):]
		src = src[:min(uint64(len(src)), q.w-pos)]
		dst := nb[pos%uint64(size):]
		n := copy(dst, src)
		pos += uint64(n)
	}
	q.buf = nb
}

// hasRoom reports whether a feeder would get room from reserve.
func (q *ring) hasRoom() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.freeLocked(64<<10) > 0
}

// reserve returns a contiguous free region of at most max bytes for the
// caller to fill and then commit, or nil if the ring is full (the caller
// then drops). want is the size worth growing the ring for.
func (q *ring) reserve(want, max int) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	free := q.freeLocked(want)
	if free == 0 {
		q.dropping = true
		return nil
	}
	start := int(q.w % uint64(len(q.buf)))
	n := min(free, len(q.buf)-start, max)
	return q.buf[start : start+n]
}

// commit makes n bytes of the last reserved region available to the writer.
func (q *ring) commit(n int) {
	q.mu.Lock()
	q.w += uint64(n)
	q.mu.Unlock()
}

// put copies p into the ring, or reports false (and copies nothing) if
// it does not fit.
func (q *ring) put(p []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.freeLocked(len(p)) < len(p) {
		q.dropping = true
		return false
	}
	for len(p) > 0 {
		start := int(q.w % uint64(len(q.buf)))
		n := copy(q.buf[start:], p)
		p = p[n:]
		q.w += uint64(n)
	}
	return true
}

// putSome copies as much of p into the ring as fits and returns how much.
func (q *ring) putSome(p []byte) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	free := q.freeLocked(len(p))
	if free == 0 {
		q.dropping = true
		return 0
	}
	n := min(free, len(p))
	for p = p[:n]; len(p) > 0; {
		start := int(q.w % uint64(len(q.buf)))
		k := copy(q.buf[start:], p)
		p = p[k:]
		q.w += uint64(k)
	}
	return n
}

// drop records n bytes of output lost at the current end of the ring.
func (q *ring) drop(n int, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dropping = true
	if k := len(q.gaps); k > 0 && q.gaps[k-1].pos == q.w {
		q.gaps[k-1].n += uint64(n)
		return
	}
	q.gaps = append(q.gaps, gap{pos: q.w, n: uint64(n), reason: reason})
}

// next returns the next bytes for the writer (at most max, contiguous, not
// crossing a gap), or the gap at the current position, or neither when
// the ring is empty.
func (q *ring) next(max int) ([]byte, *gap) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.gaps) > 0 && q.gaps[0].pos == q.r {
		g := q.gaps[0]
		q.gaps = q.gaps[1:]
		if len(q.gaps) == 0 {
			q.gaps = nil
		}
		return nil, &g
	}
	avail := q.w - q.r
	if len(q.gaps) > 0 {
		avail = min(avail, q.gaps[0].pos-q.r)
	}
	if avail == 0 {
		return nil, nil
	}
	start := int(q.r % uint64(len(q.buf)))
	n := min(int(avail), len(q.buf)-start, max)
	return q.buf[start : start+n], nil
}

// release frees n bytes the writer took with next.
func (q *ring) release(n int) {
	q.mu.Lock()
	q.r += uint64(n)
	q.mu.Unlock()
}

// empty reports whether the writer has nothing left: no bytes, no gaps.
func (q *ring) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.r == q.w && len(q.gaps) == 0
}

// buffered is the number of bytes waiting for the writer.
func (q *ring) buffered() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int(q.w - q.r)
}
