// Command logs measures log capture throughput for scripts/bench/logs.sh
// (make bench-logs): the same writer program writing to /dev/null,
// captured by a logfile.Stream into a rotating log, and captured by
// supervisord, side by side in one table.
//
// Usage:
//
//	logs run [-bytes N] [-supervisord PATH]  # prints the table
//	logs write -bytes N -mode lines|buffered -report FIFO  # the writer program
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hostctl/hostctl/supervisor/logfile"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "logs bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: logs run|write [flags]")
	}
	switch args[0] {
	case "write":
		return write(args[1:])
	case "run":
		return bench(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q; use run or write", args[0])
}

// write is the writer program. It writes exactly -bytes bytes to stdout
// as fast as it can and reports its start and end times (unix nanos) on
// the -report FIFO, one per line.
//
// Modes: "lines" writes each ~100-byte log line with its own write(2),
// like most loggers; "buffered" writes the same lines in 64 KiB blocks,
// like stdio on a pipe (the hardest case for a capturer: least work per
// byte for the writer).
func write(args []string) error {
	fs := flag.NewFlagSet("write", flag.ContinueOnError)
	n := fs.Int64("bytes", 1<<30, "bytes to write")
	mode := fs.String("mode", "lines", "lines or buffered")
	report := fs.String("report", "", "FIFO to report start and end times on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rep *os.File
	if *report != "" {
		var err error
		if rep, err = os.OpenFile(*report, os.O_WRONLY, 0); err != nil {
			return err
		}
		defer rep.Close()
	}
	start := time.Now()
	if rep != nil {
		fmt.Fprintln(rep, start.UnixNano())
	}
	out := os.Stdout
	left := *n
	line := make([]byte, 0, 128)
	switch *mode {
	case "lines":
		// One write(2) per line, as Go's log package, zap and most
		// loggers do.
		for i := int64(0); left > 0; i++ {
			line = appendLine(line[:0], i)
			k := min(int64(len(line)), left)
			if _, err := out.Write(line[:k]); err != nil {
				return err
			}
			left -= k
		}
	case "buffered":
		// Lines through a 64 KiB buffer, as stdio does for a pipe.
		bw := bufio.NewWriterSize(out, 64<<10)
		for i := int64(0); left > 0; i++ {
			line = appendLine(line[:0], i)
			k := min(int64(len(line)), left)
			bw.Write(line[:k])
			left -= k
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	if rep != nil {
		fmt.Fprintln(rep, time.Now().UnixNano())
	}
	return nil
}

// appendLine appends a log line of about 100 bytes.
func appendLine(b []byte, i int64) []byte {
	b = append(b, "2026-11-25T20:30:00.000Z INFO request method=GET path=/api/v1/items/"...)
	b = strconv.AppendInt(b, i%100000, 10)
	b = append(b, " status=200 bytes="...)
	b = strconv.AppendInt(b, (i*7919)%65536, 10)
	b = append(b, " req="...)
	b = strconv.AppendInt(b, i, 36)
	for len(b) < 99 {
		b = append(b, ' ')
	}
	return append(b, '\n')
}

type result struct {
	writer, capture string
	bytes           int64   // bytes the writer wrote
	writerSec       float64 // the writer's first write to its last
	onDisk          int64   // bytes in the log files (-1: not counted)
	diskSec         float64 // the writer's first write until everything is on disk
	cpu             float64 // capturing process, percent of one CPU over diskSec; -1 if none
	dropped         int64   // -1 if not known
	note            string
}

func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	n := fs.Int64("bytes", 512<<20, "bytes the buffered writer writes")
	lineBytes := fs.Int64("line-bytes", 64<<20, "bytes the line-by-line writer writes")
	reps := fs.Int("reps", 3, "runs per row; the median is shown")
	sup := fs.String("supervisord", "/usr/bin/supervisord", "supervisord to compare with (\"\" to skip)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	only := fs.String("captures", "", "run only the captures whose names contain this, e.g. \"hostctl\"")
	modeList := fs.String("modes", "lines,buffered", "writer modes to run, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hostctl-bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	type capture struct {
		name string
		run  func(mode string, n int64) (result, error)
	}
	captures := []capture{
		{"/dev/null", func(mode string, n int64) (result, error) { return devNull(self, tmp, mode, n) }},
		{"cat > file", func(mode string, n int64) (result, error) { return catFile(self, tmp, mode, n) }},
		{"hostctl", func(mode string, n int64) (result, error) { return hostctl(self, tmp, mode, n, false, false) }},
		{"hostctl, compress", func(mode string, n int64) (result, error) { return hostctl(self, tmp, mode, n, true, false) }},
		{"hostctl, timestamps", func(mode string, n int64) (result, error) { return hostctl(self, tmp, mode, n, false, true) }},
	}
	if *sup != "" {
		captures = append(captures, capture{"supervisord", func(mode string, n int64) (result, error) {
			return supervisord(ctx, self, *sup, tmp, mode, n)
		}})
	}
	captures = slices.DeleteFunc(captures, func(c capture) bool { return !strings.Contains(c.name, *only) })
	var results []result
	for _, mode := range strings.Split(*modeList, ",") {
		size := *n
		if mode == "lines" {
			size = *lineBytes
		}
		// Round-robin repetitions so that noise on a shared machine
		// spreads over every row; each row reports its median run.
		runs := make([][]result, len(captures))
		for range *reps {
			for i, c := range captures {
				r, err := c.run(mode, size)
				if err != nil {
					return fmt.Errorf("%s, %s writer: %w", c.name, mode, err)
				}
				if r.capture == "" {
					r.capture = c.name
				}
				runs[i] = append(runs[i], r)
			}
		}
		for _, rs := range runs {
			slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.writerSec, b.writerSec) })
			results = append(results, rs[len(rs)/2])
		}
	}
	print(results, *reps)
	return nil
}

// writer starts the writer program with stdout on out and returns it and
// the FIFO it reports on.
func startWriter(self, tmp, mode string, n int64, out *os.File) (*exec.Cmd, *bufio.Reader, func(), error) {
	fifo := filepath.Join(tmp, "report")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(self, "write", "-bytes", strconv.FormatInt(n, 10), "-mode", mode, "-report", fifo)
	cmd.Stdout = out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	f, err := os.Open(fifo) // blocks until the writer opens it
	if err != nil {
		return nil, nil, nil, err
	}
	return cmd, bufio.NewReader(f), func() { f.Close() }, nil
}

func readTime(r *bufio.Reader) (time.Time, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return time.Time{}, fmt.Errorf("reading writer report: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	return time.Unix(0, ns), err
}

func devNull(self, tmp, mode string, n int64) (result, error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return result{}, err
	}
	defer null.Close()
	cmd, rep, done, err := startWriter(self, tmp, mode, n, null)
	if err != nil {
		return result{}, err
	}
	defer done()
	start, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	end, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	if err := cmd.Wait(); err != nil {
		return result{}, err
	}
	sec := end.Sub(start).Seconds()
	return result{writer: mode, capture: "/dev/null", bytes: n, writerSec: sec, onDisk: -1, diskSec: sec, cpu: -1, dropped: -1}, nil
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func hostctl(self, tmp, mode string, n int64, compress, timestamps bool) (result, error) {
	dir := filepath.Join(tmp, "hostctl")
	os.RemoveAll(dir)
	cfg := logfile.DefaultConfig()
	cfg.Dir = dir
	cfg.Compress = compress
	m, err := logfile.NewManager(cfg, nil)
	if err != nil {
		return result{}, err
	}
	defer m.Close()
	s, err := m.Open(filepath.Join(dir, "writer.out.log"), cfg.Rotation(), timestamps)
	if err != nil {
		return result{}, err
	}
	cpu0 := cpuSelf()
	cmd, rep, done, err := startWriter(self, tmp, mode, n, s.WriteEnd())
	if err != nil {
		return result{}, err
	}
	defer done()
	start, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	wend, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	if err := cmd.Wait(); err != nil {
		return result{}, err
	}
	// Close drains the pipe and waits for the disk writer.
	if err := s.Close(); err != nil {
		return result{}, err
	}
	end := time.Now()
	cpu := cpuSelf() - cpu0
	wall := end.Sub(start)
	note := ""
	if compress {
		note = "gzip runs after rotation, in the same process"
	}
	if timestamps {
		note = fmt.Sprintf("%d bytes on disk with timestamps", s.Written())
	}
	return result{writer: mode, bytes: n, writerSec: wend.Sub(start).Seconds(), onDisk: int64(s.Written()), diskSec: wall.Seconds(),
		cpu: 100 * cpu.Seconds() / wall.Seconds(), dropped: int64(s.Dropped()), note: note}, nil
}

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name in parentheses; utime and stime are
	// fields 14 and 15 overall, in clock ticks (100 per second on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func supervisord(ctx context.Context, self, bin, tmp, mode string, n int64) (result, error) {
	dir := filepath.Join(tmp, "supervisord")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	fifo := filepath.Join(tmp, "report")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return result{}, err
	}
	conf := filepath.Join(dir, "supervisord.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`[supervisord]
nodaemon=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s

[program:writer]
command=%[2]s write -bytes %[3]d -mode %[4]s -report %[5]s
autostart=true
autorestart=false
startsecs=0
stdout_logfile=%[1]s/writer.out.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=10
`, dir, self, n, mode, fifo)), 0o644)
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "-n", "-c", conf)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("starting supervisord: %w", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	f, err := os.Open(fifo)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	rep := bufio.NewReader(f)
	start, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	end, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	wall := end.Sub(start)
	onDisk, err := dirBytes(dir, "writer.out.log")
	if err != nil {
		return result{}, err
	}
	return result{writer: mode, capture: "supervisord " + version(bin), bytes: n, writerSec: wall.Seconds(),
		onDisk: onDisk, diskSec: wall.Seconds(), cpu: 100 * (cpu1 - cpu0).Seconds() / wall.Seconds(), dropped: -1,
		note: "timed to the writer's last write (the pipe holds at most 64 KiB more)"}, nil
}

func version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// dirBytes sums the sizes of the files in dir whose names start with prefix.
func dirBytes(dir, prefix string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			fi, err := e.Info()
			if err != nil {
				return 0, err
			}
			n += fi.Size()
		}
	}
	return n, nil
}

// catFile captures with cat > file: the least a capturer can do (no
// rotation, C), as a reference.
func catFile(self, tmp, mode string, n int64) (result, error) {
	path := filepath.Join(tmp, "cat.out")
	defer os.Remove(path)
	out, err := os.Create(path)
	if err != nil {
		return result{}, err
	}
	defer out.Close()
	cat := exec.Command("cat")
	cat.Stdout = out
	w, err := cat.StdinPipe()
	if err != nil {
		return result{}, err
	}
	if err := cat.Start(); err != nil {
		return result{}, err
	}
	wf := w.(*os.File)
	cmd, rep, done, err := startWriter(self, tmp, mode, n, wf)
	if err != nil {
		return result{}, err
	}
	defer done()
	wf.Close()
	start, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	wend, err := readTime(rep)
	if err != nil {
		return result{}, err
	}
	if err := cmd.Wait(); err != nil {
		return result{}, err
	}
	if err := cat.Wait(); err != nil {
		return result{}, err
	}
	end := time.Now()
	ru := cat.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fi, err := out.Stat()
	if err != nil {
		return result{}, err
	}
	wall := end.Sub(start)
	return result{writer: mode, capture: "cat > file", bytes: n, writerSec: wend.Sub(start).Seconds(), onDisk: fi.Size(),
		diskSec: wall.Seconds(), cpu: 100 * cpu.Seconds() / wall.Seconds(), dropped: -1,
		note: "reference: a plain pipe into one file, no rotation"}, nil
}

func print(results []result, reps int) {
	fmt.Printf("Log capture: a writer program writes ~100-byte log lines to stdout as fast as it can,\n")
	fmt.Printf("one write(2) per line (lines) or in 64 KiB writes (buffered). Median of %d runs per row.\n", reps)
	fmt.Printf("hostctl rotates at max_size 50MB, max_backups 10; supervisord at 50MB (50 MiB), 10 backups. MB = 10^6 bytes.\n")
	fmt.Printf("writer MB/s: how fast the program could write. on disk MB/s: bytes in the logs / time until they are there.\n")
	fmt.Printf("CPU%%: the capturing process (hostctl, supervisord, cat), %% of one core.\n\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "writer\tcapture\tMB\twriter MB/s\tof /dev/null\ton disk MB/s\tdropped\tCPU%\t")
	var base float64
	for _, r := range results {
		rate := float64(r.bytes) / 1e6 / r.writerSec
		if r.capture == "/dev/null" {
			base = rate
		}
		disk, cpu, dropped := "-", "-", "-"
		if r.onDisk >= 0 {
			disk = fmt.Sprintf("%.0f", float64(r.onDisk)/1e6/r.diskSec)
		}
		if r.cpu >= 0 {
			cpu = fmt.Sprintf("%.0f%%", r.cpu)
		}
		if r.dropped >= 0 {
			dropped = fmt.Sprintf("%.1f%%", 100*float64(r.dropped)/float64(r.bytes))
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.0f%%\t%s\t%s\t%s\t\n", r.writer, r.capture, float64(r.bytes)/1e6, rate, 100*rate/base, disk, dropped, cpu)
	}
	w.Flush()
	fmt.Println()
	for _, r := range results {
		if r.note != "" {
			fmt.Printf("  %s / %s: %s\n", r.writer, r.capture, r.note)
		}
	}
}
