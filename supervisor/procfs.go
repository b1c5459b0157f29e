package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStat is what hostctl reads from /proc/PID/stat.
type procStat struct {
	pid       int
	state     byte
	ppid      int
	pgid      int
	utime     uint64 // clock ticks
	stime     uint64 // clock ticks
	startTime uint64 // clock ticks since boot
	rssPages  int64
}

// readProcStat parses /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

func parseProcStat(pid int, b []byte) (procStat, error) {
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+2:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	num := func(n int) uint64 { v, _ := strconv.ParseUint(string(f[n-3]), 10, 64); return v }
	st := procStat{pid: pid, state: f[0][0]}
	st.ppid = int(num(4))
	st.pgid = int(num(5))
	st.utime = num(14)
	st.stime = num(15)
	st.startTime = num(22)
	if len(f) >= 22 {
		v, _ := strconv.ParseInt(string(f[24-3]), 10, 64)
		st.rssPages = v
	}
	return st, nil
}

// allProcs reads the stat of every process.
func allProcs() []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out
}
