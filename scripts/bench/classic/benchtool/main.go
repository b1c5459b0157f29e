// Command benchtool does the timing and parsing for scripts/bench/compare.sh
// (make bench): the Django example under nginx + supervisord versus under
// hostctl. Each subcommand prints key=value lines that compare.sh appends
// to its results file; "table" turns that file into the Markdown table.
//
//	benchtool first200 -url URL -t0 UNIXNANOS [-timeout D]  # start to the first 200
//	benchtool task -url URL [-timeout D]                      # a celery task through the site
//	benchtool killwait -url URL -pid PID [-timeout D]         # kill -9 gunicorn's master, time to a 200 from a new one
//	benchtool spew -bytes N -wait-for FILE -report FILE       # the fast-writing program (log capture)
//	benchtool usage -idle D PID...                            # RSS sum and CPU over D
//	benchtool wrk -prefix P < wrk-output                      # req/s, p50, p99, failed requests
//	benchtool table -file RESULTS                             # Markdown table, min/median, ratios
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool first200|task|killwait|spew|usage|wrk|table [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"first200": first200, "task": task, "killwait": killwait, "spew": spew,
		"usage": usage, "wrk": wrk, "table": table,
	}
	fn, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "benchtool: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := fn(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool "+os.Args[1]+":", err)
		os.Exit(1)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(url string) (int, http.Header, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// first200 prints the seconds from -t0 (when the stack was started) to the
// first 200 from the site.
func first200(args []string) error {
	fs := flag.NewFlagSet("first200", flag.ExitOnError)
	url := fs.String("url", "", "the site's URL")
	t0 := fs.Int64("t0", 0, "start time, unix nanoseconds")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after")
	fs.Parse(args)
	start := time.Unix(0, *t0)
	for time.Since(start) < *timeout {
		if code, _, _, err := get(*url); err == nil && code == 200 {
			fmt.Printf("start_to_200_s=%.3f\n", time.Since(start).Seconds())
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from %s within %s", *url, *timeout)
}

// task enqueues a celery task through the site and waits for its result:
// the whole stack (rabbitmq, celery, memcached) works.
func task(args []string) error {
	fs := flag.NewFlagSet("task", flag.ExitOnError)
	url := fs.String("url", "", "the site's URL")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Post(*url+"/tasks/add/?x=1&y=2", "text/plain", nil)
		if err != nil {
			last = err.Error()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var r struct{ ID string }
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 || json.Unmarshal(b, &r) != nil {
			last = fmt.Sprintf("enqueue: %d %s", resp.StatusCode, b)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			_, _, body, err := get(*url + "/tasks/" + r.ID + "/")
			if err == nil && strings.Contains(body, `"SUCCESS"`) {
				return nil
			}
			last = body
		}
	}
	return fmt.Errorf("no celery task done within %s (last: %s)", *timeout, last)
}

// killwait sends SIGKILL to gunicorn's master and prints the seconds until
// a 200 comes from a worker of another master (X-Served-By: master/worker),
// so orphaned workers of the killed master still answering do not count,
// and how many polls failed meanwhile.
func killwait(args []string) error {
	fs := flag.NewFlagSet("killwait", flag.ExitOnError)
	url := fs.String("url", "", "the site's URL")
	pid := fs.Int("pid", 0, "gunicorn master pid")
	timeout := fs.Duration("timeout", time.Minute, "give up after")
	fs.Parse(args)
	old := strconv.Itoa(*pid) + "/"
	t0 := time.Now()
	if err := syscall.Kill(*pid, syscall.SIGKILL); err != nil {
		return err
	}
	failed := 0
	for time.Since(t0) < *timeout {
		code, h, _, err := get(*url)
		if by := h.Get("X-Served-By"); err == nil && code == 200 && by != "" && !strings.HasPrefix(by, old) {
			fmt.Printf("kill_to_200_s=%.3f\nkill_failed_polls=%d\n", time.Since(t0).Seconds(), failed)
			return nil
		}
		if err != nil || code != 200 {
			failed++
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from a new gunicorn within %s", *timeout)
}

// spew waits for -wait-for to exist, writes -bytes of 100-byte log lines
// to stdout in 64 KiB writes (stdio on a pipe), and writes its throughput
// to -report. The supervisor capturing stdout sets the pace.
func spew(args []string) error {
	fs := flag.NewFlagSet("spew", flag.ExitOnError)
	n := fs.Int64("bytes", 200e6, "bytes to write")
	waitFor := fs.String("wait-for", "", "start once this file exists")
	report := fs.String("report", "", "write log_mb_s=... here")
	fs.Parse(args)
	for *waitFor != "" {
		if _, err := os.Stat(*waitFor); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	line := []byte(strings.Repeat("x", 60))
	var block bytes.Buffer
	for block.Len() < 64<<10-100 {
		fmt.Fprintf(&block, "2026-01-01T00:00:00Z INFO spew %08d %s\n", block.Len(), line)
	}
	t0 := time.Now()
	var written int64
	for written < *n {
		b := block.Bytes()
		if rest := *n - written; rest < int64(len(b)) {
			b = b[:rest]
		}
		if _, err := os.Stdout.Write(b); err != nil {
			return err
		}
		written += int64(len(b))
	}
	mbs := float64(written) / 1e6 / time.Since(t0).Seconds()
	return os.WriteFile(*report, []byte(fmt.Sprintf("log_mb_s=%.1f\n", mbs)), 0o644)
}

// usage prints the RSS sum of the pids at the end and their CPU use over
// -idle, as a percentage of one CPU.
func usage(args []string) error {
	fs := flag.NewFlagSet("usage", flag.ExitOnError)
	idle := fs.Duration("idle", 30*time.Second, "measure CPU over this")
	prefix := fs.String("prefix", "idle_", "key prefix")
	fs.Parse(args)
	var pids []int
	for _, a := range fs.Args() {
		p, err := strconv.Atoi(a)
		if err != nil {
			return err
		}
		pids = append(pids, p)
	}
	cpu := func() (ticks int64) {
		for _, p := range pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
		return ticks
	}
	c0, t0 := cpu(), time.Now()
	if *idle > 0 {
		time.Sleep(*idle)
	}
	c1, el := cpu(), time.Since(t0)
	var rssKB int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				rssKB += kb
			}
		}
	}
	fmt.Printf("%srss_mb=%.1f\n", *prefix, float64(rssKB)/1024)
	if *idle > 0 {
		// USER_HZ is 100 on Linux.
		fmt.Printf("%scpu_pct=%.3f\n", *prefix, float64(c1-c0)/100/el.Seconds()*100)
	}
	return nil
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
)

// wrk parses wrk --latency output from stdin.
func wrk(args []string) error {
	fs := flag.NewFlagSet("wrk", flag.ExitOnError)
	prefix := fs.String("prefix", "", "key prefix")
	fs.Parse(args)
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	out := string(b)
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	fmt.Printf("%srps=%s\n", *prefix, m[1])
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		v *= map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[m[3]]
		fmt.Printf("%sp%s_ms=%.2f\n", *prefix, m[1], v)
	}
	failed := 0
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		failed += n
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			failed += n
		}
	}
	fmt.Printf("%sfailed=%d\n", *prefix, failed)
	if m := wrkTotal.FindStringSubmatch(out); m != nil {
		fmt.Printf("%srequests=%s\n", *prefix, m[1])
	}
	return nil
}

// metric is one row of the table.
type metric struct {
	key, label  string
	lowerBetter bool
}

var metrics = []metric{
	{"rps", "requests/s through the proxy (wrk -t2 -c64 -d10s)", false},
	{"p50_ms", "latency p50 (ms)", true},
	{"p99_ms", "latency p99 (ms)", true},
	{"restart_failed", "failed requests during a gunicorn restart (wrk -c32 --timeout 30s, 10 s)", true},
	{"restart_requests", "requests answered in that run (any status)", false},
	{"rolling_failed", "failed requests during a rolling restart of 2 instances of configs/demo/web.py (wrk -c64 --timeout 30s, 15 s)", true},
	{"rolling_requests", "requests answered in the rolling restart run (any status)", false},
	{"kill_to_200_s", "kill -9 gunicorn master -> first 200 from the new one (s)", true},
	{"log_mb_s", "log capture of a fast writer (MB/s)", false},
	{"idle_rss_mb", "RSS, idle (MB): supervisord + nginx vs hostctl", true},
	{"load_rss_mb", "RSS after the load runs (MB)", true},
	{"idle_cpu_pct", "CPU while idle, 30 s (% of one core)", true},
	{"start_to_200_s", "start -> first 200 (s)", true},
}

// table reads "setup round key=value" lines and prints the Markdown table.
func table(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	file := fs.String("file", "", "results file")
	fs.Parse(args)
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	vals := map[string]map[string][]float64{"classic": {}, "hostctl": {}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		k, v, ok := strings.Cut(fields[2], "=")
		x, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || vals[fields[0]] == nil {
			continue
		}
		vals[fields[0]][k] = append(vals[fields[0]][k], x)
	}
	if len(vals["classic"]) == 0 && len(vals["hostctl"]) == 0 {
		return errors.New("no results")
	}
	cell := func(xs []float64) (string, float64) {
		if len(xs) == 0 {
			return "n/a", 0
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		med := s[len(s)/2]
		if len(s)%2 == 0 {
			med = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return fmt.Sprintf("%s / %s", num(s[0]), num(med)), med
	}
	fmt.Println("| metric (min / median of the rounds) | nginx + supervisord | hostctl | hostctl / classic (medians) |")
	fmt.Println("|---|---|---|---|")
	for _, m := range metrics {
		c, cm := cell(vals["classic"][m.key])
		h, hm := cell(vals["hostctl"][m.key])
		ratio := "n/a"
		switch {
		case c != "n/a" && h != "n/a" && cm != 0:
			ratio = fmt.Sprintf("%.2f", hm/cm)
		case c != "n/a" && h != "n/a" && cm == 0 && hm == 0:
			ratio = "equal (0)"
		}
		fmt.Printf("| %s | %s | %s | %s |\n", m.label, c, h, ratio)
	}
	return nil
}

func num(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'f', 3, 64)
}
