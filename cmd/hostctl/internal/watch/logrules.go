package watch

// Log rules ([[alerts.log_rule]]): alert when programs print lines that
// match, more often than a threshold.
//
// The log writer of each program stream (logfile.Stream.SetTap) hands
// every piece of output it has just written to enqueue, which copies it
// into a bounded queue and returns: matching never slows capture or holds
// a program back. When the queue is full the piece is not matched, and is
// counted (Dropped, the metric hostctl_log_rule_dropped_bytes_total); the
// output itself is in the file all the same. One goroutine (run) takes
// the queue, cuts it into lines, joins each Python traceback into one
// event, and counts the events each rule matches; Run's rounds (check)
// resolve the alerts that have been quiet long enough. Only the streams
// a rule reads are tapped, and the matcher skips, without cutting them,
// the lines that hold none of the texts the rules' regexes require
// (alert.Needle; chunkScan).
//
//	condition  triggers when                                 resolves when
//	log_rule   more than N events match within WINDOW        the rate has stayed at or below N/WINDOW
//	           (threshold = "N/WINDOW")                      for `quiet`

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
)

const (
	// ruleQueueChunks and ruleQueueBytes bound the queue between the log
	// writers and the matcher.
	ruleQueueChunks = 1024
	ruleQueueBytes  = 8 << 20
	// lineMax bounds a line the matcher keeps while waiting for its end.
	lineMax = 64 << 10
	// tracebackMax bounds the lines of one traceback event.
	tracebackMax = 400
	// eventFlush ends a traceback that waits for a possible chained
	// exception when its stream has been quiet this long.
	eventFlush = 200 * time.Millisecond
	// sampleMessages bounds the distinct messages a sample counts.
	sampleMessages = 20
	// sampleTextMax bounds the first and last event's text in an alert.
	sampleTextMax = 4 << 10
)

// tapper is a log stream whose writer hands over what it wrote
// (*logfile.Stream).
type tapper interface {
	SetTap(fn func(p []byte))
}

// chunk is one piece of output as written to the log file.
type chunk struct {
	key  streamKey
	prog supervisor.ProcessNames
	b    []byte
	lost bool // output before it was not matched (the queue was full)
}

type streamKey struct {
	process string
	stream  string // "stdout", "stderr", or "" for a stream holding both (redirect_stderr)
}

// event is one matchable unit: a line, or a whole Python traceback.
type event struct {
	prog    string
	text    string // the line, or the traceback's lines joined by "\n"
	message string // the line, or the traceback's exception line
	at      time.Time
}

// lineState is what the matcher keeps of one stream between chunks.
type lineState struct {
	key     streamKey
	prog    supervisor.ProcessNames
	reads   []bool // per rule: it reads this stream (ruleReads), for rules generation gen
	gen     int
	plan    scanPlan // which lines the rules that read the stream can match, for gen
	freq    byteFreq // how often each byte appears in the stream
	partial []byte   // the line being read, without its newline
	tb      []string // a traceback being collected
	tbState int      // tbNone, tbFrames, tbAfter, tbChain
	exc     string   // the traceback's (last) exception line
	lastAt  time.Time
}

const (
	tbNone   = iota
	tbFrames // after "Traceback (most recent call last):"
	tbAfter  // after the exception line: a chained exception may follow
	tbChain  // in "During handling of the above exception..." between tracebacks
)

// ruleState is what the matcher keeps of one rule.
type ruleState struct {
	times  []time.Time // the newest count+1 event times, oldest first
	active bool        // its alert is set
	dirty  bool        // events since the alert was last set
	total  int
	first  event
	last   event
	msgs   []msgCount // distinct messages, in order of first sight
	other  int        // events whose message did not fit msgs
	progs  []string
}

type msgCount struct {
	key, message string
	count        int
}

// logRules runs the log rules. enqueue may be called from any goroutine;
// the rest runs on the matcher goroutine (run) and on Run's rounds.
type logRules struct {
	m   Alerts
	now func() time.Time

	queue   chan chunk
	queued  atomic.Int64  // bytes in queue
	dropped atomic.Uint64 // bytes not matched because the queue was full
	// bufs recycles the chunks' buffers (*[]byte) from the matcher to
	// the taps, one pool per power of two from 4 KiB to 1 MiB: a new
	// buffer for every chunk cost the log writers page faults and the
	// process GC cycles. A buffer is at most twice its chunk, so the
	// queue holds at most twice ruleQueueBytes.
	bufs [bufClassMax - bufClassMin + 1]sync.Pool

	// mu guards everything below. Taken by the matcher (feed, flush) and
	// by Run's rounds (configure, tapStreams, check); a leaf lock: Alerts'
	// Set and Clear never block.
	mu      sync.Mutex
	rules   []alert.LogRule
	gen     int                   // counts configure's changes of rules
	state   map[string]*ruleState // by rule name
	streams map[streamKey]*lineState
	tapped  map[streamKey]supervisor.LogStream
	scan    chunkScan // feed's, kept for its memory
	hits    []bool    // per rule: matching's answer for the event at hand
	tbText  []byte    // endTraceback's, kept for its memory
	// scanAll turns the prefilter off: every line goes to the regexes.
	// Tests check the prefilter against it.
	scanAll bool
}

func newLogRules(m Alerts, now func() time.Time) *logRules {
	return &logRules{m: m, now: now, queue: make(chan chunk, ruleQueueChunks),
		state: map[string]*ruleState{}, streams: map[streamKey]*lineState{}, tapped: map[streamKey]supervisor.LogStream{}}
}

// Dropped is how many bytes of output the rules did not read because
// their queue was full.
func (lr *logRules) Dropped() uint64 { return lr.dropped.Load() }

// enqueue is a log writer's tap: it copies p into the queue, or counts it
// as dropped. It never blocks.
func (lr *logRules) enqueue(key streamKey, prog supervisor.ProcessNames, lost *atomic.Bool, p []byte) {
	n := int64(len(p))
	if lr.queued.Load()+n > ruleQueueBytes {
		lr.dropped.Add(uint64(n))
		lost.Store(true)
		return
	}
	c := chunk{key: key, prog: prog, b: lr.copyChunk(p), lost: lost.Load()}
	select {
	case lr.queue <- c:
		lr.queued.Add(n)
		if c.lost {
			lost.Store(false)
		}
	default:
		lr.recycle(c.b)
		lr.dropped.Add(uint64(n))
		lost.Store(true)
	}
}

// Chunk buffers are recycled for chunks of 2^bufClassMin+1 to
// 2^bufClassMax bytes; smaller ones are cheap to allocate, larger ones
// rare (the log writer hands over what one read of the pipe brought).
const (
	bufClassMin = 12
	bufClassMax = 20
)

// bufClass returns the pool for chunks of n bytes, and its buffers' size.
func (lr *logRules) bufClass(n int) (*sync.Pool, int) {
	c := bits.Len(uint(n - 1))
	if n <= 1<<bufClassMin || c > bufClassMax {
		return nil, 0
	}
	return &lr.bufs[c-bufClassMin], 1 << c
}

// copyChunk copies p into a recycled buffer, or a new one.
func (lr *logRules) copyChunk(p []byte) []byte {
	pool, size := lr.bufClass(len(p))
	if pool == nil {
		return append([]byte(nil), p...)
	}
	if bp, _ := pool.Get().(*[]byte); bp != nil {
		return append((*bp)[:0], p...)
	}
	return append(make([]byte, 0, size), p...)
}

// recycle gives a chunk's buffer back once nothing refers to it.
func (lr *logRules) recycle(b []byte) {
	if pool, size := lr.bufClass(len(b)); pool != nil && cap(b) == size {
		b = b[:0]
		pool.Put(&b)
	}
}

// run is the matcher goroutine.
func (lr *logRules) run(ctx context.Context) {
	t := time.NewTimer(eventFlush)
	defer t.Stop()
	for {
		select {
		case c := <-lr.queue:
			lr.queued.Add(-int64(len(c.b)))
			lr.mu.Lock()
			lr.feed(c, lr.now())
			lr.mu.Unlock()
			lr.recycle(c.b) // feed keeps copies of what it keeps
			t.Reset(eventFlush)
		case <-t.C:
			lr.mu.Lock()
			lr.flush(lr.now(), eventFlush)
			lr.mu.Unlock()
			t.Reset(eventFlush)
		case <-ctx.Done():
			return
		}
	}
}

// configure takes the rules of the current config; a reload keeps the
// state of the rules that keep their names. lr.mu is held.
func (lr *logRules) configure(rules []alert.LogRule) {
	if len(rules) == len(lr.rules) && (len(rules) == 0 || &rules[0] == &lr.rules[0]) {
		return
	}
	lr.rules = rules
	lr.gen++
	keep := map[string]bool{}
	for _, r := range rules {
		keep[r.Name] = true
	}
	for name, rs := range lr.state {
		if !keep[name] {
			if rs.active {
				lr.m.Clear(alert.CondLogRule+":"+name, "log rule "+name+" was removed from the config")
			}
			delete(lr.state, name)
		}
	}
}

// tapStreams hands the log writers of process st the tap, once per
// stream, or takes it back when no rule reads the stream. lr.mu is held.
func (lr *logRules) tapStreams(sup Supervisor, st supervisor.Status) {
	out, _ := sup.Log(st.Name, "stdout")
	errs, _ := sup.Log(st.Name, "stderr")
	for _, s := range []struct {
		name string
		ls   supervisor.LogStream
	}{{"stdout", out}, {"stderr", errs}} {
		key := streamKey{process: st.Name, stream: s.name}
		if s.name == "stderr" && errs == out {
			s.ls = nil // redirect_stderr: the stdout stream holds both
		} else if s.name == "stdout" && errs == out {
			key.stream = ""
		}
		old := lr.tapped[key]
		t, ok := s.ls.(tapper)
		names := st.Names()
		if !ok || !lr.anyReads(key.stream, names) {
			if old != nil {
				if ot, ok := old.(tapper); ok {
					ot.SetTap(nil)
				}
				delete(lr.tapped, key)
			}
			continue
		}
		if old == s.ls {
			continue
		}
		lost := new(atomic.Bool)
		t.SetTap(func(p []byte) { lr.enqueue(key, names, lost, p) })
		lr.tapped[key] = s.ls
	}
}

// anyReads reports whether a rule reads the process's stream ("" for a
// stream holding both). The streams no rule reads are not tapped: their
// output is not copied at all. lr.mu is held.
func (lr *logRules) anyReads(stream string, p supervisor.ProcessNames) bool {
	for i := range lr.rules {
		r := &lr.rules[i]
		if (stream == "" || r.Reads(stream)) && ruleReads(r, p) {
			return true
		}
	}
	return false
}

// forget drops what the matcher keeps of a process that is gone. lr.mu
// is held.
func (lr *logRules) forget(process string) {
	for key := range lr.tapped {
		if key.process == process {
			delete(lr.tapped, key)
		}
	}
	for key := range lr.streams {
		if key.process == process {
			delete(lr.streams, key)
		}
	}
}

// feed cuts c into lines and events and counts them. lr.mu is held.
func (lr *logRules) feed(c chunk, now time.Time) {
	ls := lr.streams[c.key]
	if ls == nil {
		ls = &lineState{key: c.key}
		lr.streams[c.key] = ls
	}
	if c.lost {
		// Output before c was not read: what was collected does not
		// join up with c.
		lr.endTraceback(c, ls, now)
		ls.partial, ls.tbState, ls.tb = ls.partial[:0], tbNone, nil
	}
	if ls.prog != c.prog {
		ls.prog, ls.reads = c.prog, nil
	}
	ls.lastAt = now
	lr.readers(ls)
	if ls.plan.none {
		ls.partial, ls.tbState, ls.tb = ls.partial[:0], tbNone, nil
		return
	}
	b := c.b
	sc := &lr.scan
	ls.freq.sample(b)
	sc.reset(b, &ls.plan, &ls.freq)
	for pos := 0; pos < len(b); {
		if len(ls.partial) == 0 && ls.tbState == tbNone {
			// Skip the whole lines that hold no needle: no rule can
			// match them and none starts a traceback.
			if pos = sc.skip(pos); pos == len(b) {
				return
			}
		}
		rest := b[pos:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if room := lineMax - len(ls.partial); room > 0 {
				ls.partial = append(ls.partial, rest[:min(len(rest), room)]...)
			}
			return
		}
		line := rest[:i]
		if len(ls.partial) > 0 {
			if room := lineMax - len(ls.partial); room > 0 {
				ls.partial = append(ls.partial, line[:min(len(line), room)]...)
			}
			line = ls.partial
		}
		lr.line(c, ls, stripStamp(bytes.TrimSuffix(line, []byte("\r"))), now)
		ls.partial = ls.partial[:0]
		pos += i + 1
	}
}

// scanPlan is the prefilter of one stream: the needles (alert.Needle)
// of the rules that read it, and the traceback's first line.
type scanPlan struct {
	none    bool // no rule reads the stream
	all     bool // a rule that reads it has a regex without needles: every line goes to the regexes
	needles []alert.Needle
}

func (lr *logRules) planFor(reads []bool) scanPlan {
	p := scanPlan{none: true, all: lr.scanAll, needles: []alert.Needle{{Text: tracebackHead}}}
	for i, r := range reads {
		if !r {
			continue
		}
		p.none = false
		ns, ok := lr.rules[i].Needles()
		if !ok {
			p.all = true
		}
		p.needles = append(p.needles, ns...)
	}
	p.needles = alert.Dedup(p.needles)
	return p
}

// chunkScan finds the lines of one chunk that hold a needle of its
// stream's plan. It remembers where each needle is next found, so a
// chunk costs one pass per needle however many lines it hands on.
type chunkScan struct {
	b    []byte
	plan *scanPlan
	tail int   // where the chunk's last, unfinished line starts
	next []int // per needle: its next instance at or after the last skip's start; len(b): none
	rare []int // per needle: the offset of its byte that is rarest in the stream
}

func (sc *chunkScan) reset(b []byte, plan *scanPlan, f *byteFreq) {
	sc.b, sc.plan = b, plan
	sc.tail = bytes.LastIndexByte(b, '\n') + 1
	sc.next, sc.rare = sc.next[:0], sc.rare[:0]
	for _, n := range plan.needles {
		sc.next = append(sc.next, -1)
		sc.rare = append(sc.rare, f.rarest(n))
	}
}

// byteFreq counts the bytes of a sample of each chunk of a stream, so
// that a needle is looked for by its byte that the stream holds least
// (alert.Needle.IndexRare). Old counts fade: what a program prints
// changes.
type byteFreq struct {
	n     [256]uint32
	total uint32
}

// freqSample is how many bytes of each chunk byteFreq counts.
const freqSample = 256

func (f *byteFreq) sample(b []byte) {
	if f.total > 1<<16 {
		for i := range f.n {
			f.n[i] /= 2
		}
		f.total /= 2
	}
	for _, c := range b[:min(len(b), freqSample)] {
		f.n[c]++
	}
	f.total += uint32(min(len(b), freqSample))
}

func (f *byteFreq) rarest(n alert.Needle) int {
	best, bestN := 0, uint32(1<<32-1)
	for i := range len(n.Text) {
		c := n.Text[i]
		k := f.n[c]
		if n.Fold && 'a' <= c && c <= 'z' {
			k += f.n[c-'a'+'A']
		}
		if k < bestN {
			best, bestN = i, k
		}
	}
	return best
}

// skip returns where the first line at or after from that holds a
// needle starts, or the chunk's unfinished last line (kept for the next
// chunk), or len(b). from is the start of a line.
func (sc *chunkScan) skip(from int) int {
	if sc.plan.all || from >= sc.tail {
		return from
	}
	hit := sc.tail
	for j, n := range sc.plan.needles {
		if sc.next[j] < from {
			if i := n.IndexRare(sc.b[from:sc.tail], sc.rare[j]); i >= 0 {
				sc.next[j] = from + i
			} else {
				sc.next[j] = len(sc.b)
			}
		}
		hit = min(hit, sc.next[j])
	}
	if hit >= sc.tail {
		return sc.tail
	}
	return from + bytes.LastIndexByte(sc.b[from:hit], '\n') + 1
}

// stripStamp removes the timestamp hostctl puts before each line of a
// program with timestamps = true.
func stripStamp(line []byte) []byte {
	if len(line) > len("2006-01-02T15:04:05") && line[4] == '-' && line[10] == 'T' && line[13] == ':' {
		if _, rest, ok := bytes.Cut(line, []byte(" ")); ok {
			return rest
		}
	}
	return line
}

const tracebackHead = "Traceback (most recent call last):"

func chainLine(l []byte) bool {
	return len(l) == 0 || bytes.HasPrefix(l, []byte("During handling of the above exception")) ||
		bytes.HasPrefix(l, []byte("The above exception was the direct cause"))
}

// line takes one line: it starts, continues or ends a traceback, or is an
// event of its own. It makes a string of the line only when it is kept.
func (lr *logRules) line(c chunk, ls *lineState, l []byte, now time.Time) {
	switch ls.tbState {
	case tbFrames:
		ls.tb = append(ls.tb, string(l))
		if len(l) > 0 && l[0] != ' ' && l[0] != '\t' {
			ls.tbState, ls.exc = tbAfter, string(l) // the exception line
		}
		if len(ls.tb) >= tracebackMax {
			lr.endTraceback(c, ls, now)
		}
		return
	case tbAfter, tbChain:
		switch {
		case chainLine(l):
			ls.tb = append(ls.tb, string(l))
			ls.tbState = tbChain
			return
		case ls.tbState == tbChain && bytes.HasPrefix(l, []byte(tracebackHead)):
			ls.tb = append(ls.tb, string(l))
			ls.tbState = tbFrames
			return
		}
		lr.endTraceback(c, ls, now)
	}
	if bytes.HasPrefix(l, []byte(tracebackHead)) {
		ls.tb, ls.tbState, ls.exc = append(ls.tb[:0], string(l)), tbFrames, ""
		return
	}
	if len(l) == 0 || !lr.matching(ls, l) {
		return
	}
	text := string(l)
	lr.event(event{prog: c.prog.Process, text: text, message: text, at: now})
}

// matching sets lr.hits: per rule, whether it reads the stream and
// matches event; it reports whether any does. event counts the event
// for those rules.
func (lr *logRules) matching(ls *lineState, event []byte) bool {
	reads := lr.readers(ls)
	lr.hits = slices.Grow(lr.hits[:0], len(lr.rules))[:len(lr.rules)]
	hit := false
	for i := range lr.rules {
		lr.hits[i] = reads[i] && lr.rules[i].MatchesBytes(event)
		hit = hit || lr.hits[i]
	}
	return hit
}

// readers returns, per rule, whether it reads the stream of ls.
func (lr *logRules) readers(ls *lineState) []bool {
	if ls.reads == nil || ls.gen != lr.gen {
		ls.reads, ls.gen = make([]bool, len(lr.rules)), lr.gen
		for i := range lr.rules {
			r := &lr.rules[i]
			ls.reads[i] = (ls.key.stream == "" || r.Reads(ls.key.stream)) && ruleReads(r, ls.prog)
		}
		ls.plan = lr.planFor(ls.reads)
	}
	return ls.reads
}

// endTraceback makes the traceback being collected one event.
func (lr *logRules) endTraceback(c chunk, ls *lineState, now time.Time) {
	if ls.tbState == tbNone {
		return
	}
	tb := ls.tb
	for len(tb) > 1 && tb[len(tb)-1] == "" {
		tb = tb[:len(tb)-1]
	}
	msg := ls.exc
	if msg == "" {
		msg = tb[len(tb)-1]
	}
	text := lr.tbText[:0]
	for i, l := range tb {
		if i > 0 {
			text = append(text, '\n')
		}
		text = append(text, l...)
	}
	if lr.matching(ls, text) {
		lr.event(event{prog: c.prog.Process, text: string(text), message: msg, at: now})
	}
	if lr.tbText = text; cap(text) > 1<<20 {
		lr.tbText = nil // a rare long one: not kept
	}
	ls.tb, ls.tbState, ls.exc = nil, tbNone, ""
}

// round is Run's part: take the current rules, tap the streams of the
// processes, forget the processes that are gone, resolve quiet alerts.
func (lr *logRules) round(sup Supervisor, rules []alert.LogRule, sts []supervisor.Status, gone []string, now time.Time) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	lr.configure(rules)
	for _, st := range sts {
		lr.tapStreams(sup, st)
	}
	for _, name := range gone {
		lr.forget(name)
	}
	lr.check(now)
}

// flush ends the tracebacks of streams quiet for idle. lr.mu is held.
func (lr *logRules) flush(now time.Time, idle time.Duration) {
	for key, ls := range lr.streams {
		if ls.tbState != tbNone && now.Sub(ls.lastAt) >= idle {
			lr.endTraceback(chunk{key: key, prog: ls.prog}, ls, now)
		}
	}
}

// event counts ev for every rule that matching found reads its stream
// and matches it, and triggers the rules that go over their threshold.
func (lr *logRules) event(ev event) {
	key := messageKey(ev.message)
	for i := range lr.rules {
		r := &lr.rules[i]
		if !lr.hits[i] {
			continue
		}
		rs := lr.state[r.Name]
		if rs == nil {
			rs = &ruleState{}
			lr.state[r.Name] = rs
		}
		count, window := r.Limit()
		if !rs.active && rs.total > 0 && ev.at.Sub(rs.last.at) > window {
			*rs = ruleState{times: rs.times[:0]} // a new burst: a new sample
		}
		rs.add(ev, key)
		rs.times = append(rs.times, ev.at)
		if len(rs.times) > count+1 {
			rs.times = append(rs.times[:0], rs.times[len(rs.times)-count-1:]...)
		}
		if !rs.active && len(rs.times) == count+1 && ev.at.Sub(rs.times[0]) <= window {
			rs.active = true
			lr.m.Set(lr.alertOf(r, rs))
			rs.dirty = false
		} else if rs.active {
			rs.dirty = true
		}
	}
}

// ruleReads reports whether rule r reads the output of the process.
func ruleReads(r *alert.LogRule, p supervisor.ProcessNames) bool {
	if len(r.Programs) == 0 {
		return true
	}
	for _, name := range r.Programs {
		if idx, _ := supervisor.Match(supervisor.HostctlNames, name, []supervisor.ProcessNames{p}); len(idx) > 0 {
			return true
		}
	}
	return false
}

// messageKey is msg with each number replaced by "#", so that messages
// that differ only in numbers (ids, ports, addresses, times) count as
// one: what replacing `0x[0-9a-fA-F]+|[0-9]+` with "#" gives, without
// running a regex for every event.
func messageKey(msg string) string {
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	hex := func(c byte) bool { return digit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }
	var out []byte // nil until the first number
	last := 0
	for i := 0; i < len(msg); {
		end := i + 1
		switch {
		case msg[i] == '0' && i+2 < len(msg) && msg[i+1] == 'x' && hex(msg[i+2]):
			for end = i + 3; end < len(msg) && hex(msg[end]); end++ {
			}
		case digit(msg[i]):
			for ; end < len(msg) && digit(msg[end]); end++ {
			}
		default:
			i++
			continue
		}
		out = append(append(out, msg[last:i]...), '#')
		last, i = end, end
	}
	if out == nil {
		return msg
	}
	return string(append(out, msg[last:]...))
}

func (rs *ruleState) add(ev event, key string) {
	if rs.total == 0 {
		rs.first = ev
	}
	rs.total++
	rs.last = ev
	if !slices.Contains(rs.progs, ev.prog) {
		rs.progs = append(rs.progs, ev.prog)
	}
	// Messages that differ only in numbers count as one (key).
	for i := range rs.msgs {
		if rs.msgs[i].key == key {
			rs.msgs[i].count++
			return
		}
	}
	if len(rs.msgs) < sampleMessages {
		rs.msgs = append(rs.msgs, msgCount{key: key, message: ev.message, count: 1})
		return
	}
	rs.other++
}

// check resolves the alerts of rules that have been at or below their
// threshold for quiet, and updates the samples of the others. lr.mu is
// held.
func (lr *logRules) check(now time.Time) {
	for i := range lr.rules {
		r := &lr.rules[i]
		rs := lr.state[r.Name]
		if rs == nil || !rs.active {
			continue
		}
		_, window := r.Limit()
		below := rs.times[0].Add(window) // the count in the window fell to the threshold then
		if quiet := r.QuietFor(); now.Sub(below) >= quiet {
			lr.m.Clear(alert.CondLogRule+":"+r.Name, fmt.Sprintf("log rule %s: at or below %s for %s (%d events in all; last: %s)",
				r.Name, r.Threshold, fmtDuration(quiet), rs.total, clip(rs.last.message, 200)))
			*rs = ruleState{}
			continue
		}
		if rs.dirty {
			lr.m.Set(lr.alertOf(r, rs))
			rs.dirty = false
		}
	}
}

// alertOf is the alert of rule r, with its sample: the first and the last
// event and a count per distinct message.
func (lr *logRules) alertOf(r *alert.LogRule, rs *ruleState) alert.Alert {
	count, window := r.Limit()
	progs := strings.Join(rs.progs, ", ")
	msgs := slices.Clone(rs.msgs)
	slices.SortStableFunc(msgs, func(a, b msgCount) int { return b.count - a.count })
	sample := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		sample[i] = map[string]any{"message": clip(m.message, 500), "count": m.count}
	}
	d := map[string]any{
		"rule":      r.Name,
		"threshold": fmt.Sprintf("more than %d in %s", count, fmtDuration(window)),
		"events":    rs.total,
		"programs":  slices.Clone(rs.progs),
		"first":     map[string]any{"time": rs.first.at.Format(time.RFC3339), "program": rs.first.prog, "text": clip(rs.first.text, sampleTextMax)},
		"last":      map[string]any{"time": rs.last.at.Format(time.RFC3339), "program": rs.last.prog, "text": clip(rs.last.text, sampleTextMax)},
		"messages":  sample,
	}
	if rs.other > 0 {
		d["other_messages"] = rs.other
	}
	if r.Notes != "" {
		d["notes"] = r.Notes
	}
	a := alert.Alert{
		Key: alert.CondLogRule + ":" + r.Name, Condition: alert.CondLogRule, Severity: r.Severity,
		Summary: fmt.Sprintf("%s on %s printed %d events matching log rule %q since %s (threshold: more than %d in %s); last: %s",
			progs, lr.m.Host(), rs.total, r.Name, rs.first.at.Format("15:04:05"), count, fmtDuration(window), clip(rs.last.message, 200)),
		Details:   d,
		LastLines: strings.Split(clip(rs.last.text, sampleTextMax), "\n"),
	}
	if len(rs.progs) == 1 {
		a.Program = rs.progs[0]
		a.Command = fmt.Sprintf("hostctl tail %s stderr", rs.progs[0])
	}
	return a
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
