package control

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

var pageSize = uint64(os.Getpagesize())

// groupUsage is what the processes of one process group use.
type groupUsage struct {
	procs int
	rss   uint64  // bytes
	cpu   float64 // seconds
}

// scanGroups reads /proc once and sums, for each wanted process group, the
// resident memory and CPU time of its live processes. One scan serves every
// program of a request: its cost grows with the number of processes on the
// machine, not with programs x processes.
func scanGroups(want map[int]bool) map[int]groupUsage {
	out := make(map[int]groupUsage, len(want))
	if len(want) == 0 {
		return out
	}
	d, err := os.Open("/proc")
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	buf := make([]byte, 1024)
	path := make([]byte, 0, 32)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		path = append(append(append(path[:0], "/proc/"...), n...), "/stat"...)
		b, ok := readSmall(string(path), buf)
		if !ok {
			continue
		}
		st, ok := parseStat(b)
		if !ok || !want[st.pgid] || st.state == 'Z' {
			continue
		}
		u := out[st.pgid]
		u.procs++
		u.rss += st.rssPages * pageSize
		u.cpu += float64(st.ticks) / clockTicks
		out[st.pgid] = u
	}
	return out
}

// readSmall reads a small file into buf with plain system calls: no
// *os.File, no poller registration, no allocation.
func readSmall(path string, buf []byte) ([]byte, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil, false
	}
	return buf[:n], true
}

// stat is the part of /proc/PID/stat the API reports.
type stat struct {
	state    byte
	pgid     int
	ticks    uint64 // utime + stime + cutime + cstime
	rssPages uint64
}

// parseStat parses /proc/PID/stat. Fields are counted after the last ')',
// since the command name may hold spaces and parentheses.
func parseStat(b []byte) (stat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return stat{}, false
	}
	var st stat
	field := 3 // b[i+2:] starts with field 3 (state)
	rest := b[i+2:]
	for len(rest) > 0 && field <= 24 {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		f := rest[:j]
		switch field {
		case 3:
			st.state = f[0]
		case 5:
			v, _ := strconv.Atoi(string(f))
			st.pgid = v
		case 14, 15, 16, 17: // utime, stime, cutime, cstime
			v, _ := strconv.ParseInt(string(f), 10, 64)
			if v > 0 {
				st.ticks += uint64(v)
			}
		case 24:
			v, _ := strconv.ParseInt(string(f), 10, 64)
			if v > 0 {
				st.rssPages = uint64(v)
			}
		}
		field++
		if j == len(rest) {
			break
		}
		rest = rest[j+1:]
	}
	return st, field > 24
}
