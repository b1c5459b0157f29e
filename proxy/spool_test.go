package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// resetBodyPeaks starts a new count of the buffers' peaks.
func resetBodyPeaks(t *testing.T) {
	t.Helper()
	bodies.mu.Lock()
	defer bodies.mu.Unlock()
	if bodies.mem != 0 || bodies.disk != 0 {
		t.Fatalf("request body buffers hold %d bytes of RAM and %d of disk before the test", bodies.mem, bodies.disk)
	}
	bodies.memPeak, bodies.diskPeak = 0, 0
}

// holdingUpstream reads each request's body, reports its checksum on
// arrived, and answers it (with the checksum) only once release is
// closed: the uploads it holds keep their buffers in the proxy.
type holdingUpstream struct {
	*upstream
	arrived chan string
	release chan struct{}
}

func newHoldingUpstream(t *testing.T) *holdingUpstream {
	h := &holdingUpstream{arrived: make(chan string, 64), release: make(chan struct{})}
	h.upstream = newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		if _, err := io.Copy(sum, r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s := hex.EncodeToString(sum.Sum(nil))
		h.arrived <- s
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, s)
	}))
	return h
}

type uploadResult struct {
	status     int
	retryAfter string
	body       string
	sent       string // checksum of what was sent
	err        error
}

// upload POSTs size random bytes, with their length or chunked.
func upload(url string, size int, chunked bool, expect bool) uploadResult {
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	res := uploadResult{sent: hex.EncodeToString(sum[:])}
	var body io.Reader = bytes.NewReader(data)
	if chunked {
		body = io.MultiReader(body) // length unknown: sent chunked
	}
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		res.err = err
		return res
	}
	if expect {
		req.Header.Set("Expect", "100-continue")
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 5 * time.Second}}
	resp, err := c.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	res.status, res.retryAfter, res.body, res.err = resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err
	return res
}

// TestParallelUploadsAgainstBufferCap sends many large uploads at once
// to an upstream that holds them: the bytes the proxy buffers never
// exceed its caps (RAM and disk, counted as they are reserved), the
// uploads past the caps get 503 with Retry-After at once, none hangs, and
// those within them reach the upstream intact. For each way a body is
// buffered: by hostctl_upstream, by hostctl_request_buffer before
// reverse_proxy (a pool, or upstream keep-alive), and for a request
// hostctl_upstream hands to reverse_proxy (Expect: 100-continue, as curl
// sends for large uploads).
func TestParallelUploadsAgainstBufferCap(t *testing.T) {
	const (
		n         = 12
		size      = 1 << 20
		memEach   = 64 << 10
		totalMem  = 4 * memEach
		totalDisk = 4 << 20
	)
	for _, tt := range []struct {
		name      string
		keepAlive bool
		expect    bool
		handler   string
	}{
		{"hostctl_upstream", false, false, `"hostctl_upstream"`},
		{"reverse_proxy", true, false, `"hostctl_request_buffer"`},
		{"expect 100-continue, handed to reverse_proxy", false, true, `"hostctl_upstream"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := newHoldingUpstream(t)
			listen := freeAddr(t)
			limit := int64(2 << 20)
			h := startProxy(t, Config{
				Listen: listen, Upstream: up.addr, UpstreamKeepAlive: tt.keepAlive,
				MaxBodySize: &limit, RequestBuffer: &limit,
				RequestBufferMemory: ptr(int64(memEach)), RequestBufferTotalMemory: ptr(int64(totalMem)),
				RequestBufferTotalDisk: ptr(int64(totalDisk)),
			})
			if !strings.Contains(string(h.p.lastJSON), tt.handler) {
				t.Fatalf("the generated config does not use %s", tt.handler)
			}
			resetBodyPeaks(t)

			results := make(chan uploadResult, n)
			for i := range n {
				go func() { results <- upload("http://"+listen+"/upload", size, i%2 == 1, tt.expect) }()
			}
			// Wait until every upload is settled: its body reached the
			// upstream (which holds it), or it was answered.
			var got []uploadResult
			var arrived []string
			deadline := time.After(60 * time.Second)
			for len(got)+len(arrived) < n {
				select {
				case r := <-results:
					got = append(got, r)
				case s := <-up.arrived:
					arrived = append(arrived, s)
				case <-deadline:
					t.Fatalf("after 60s, %d uploads answered and %d at the upstream, of %d: some hang", len(got), len(arrived), n)
				}
			}
			mem, disk, memPeak, diskPeak := bodies.usage()
			t.Logf("%d held by the upstream, %d answered; buffers now %d B RAM, %d B disk; peaks %d B RAM (cap %d), %d B disk (cap %d)",
				len(arrived), len(got), mem, disk, memPeak, totalMem, diskPeak, totalDisk)
			if memPeak > totalMem || diskPeak > totalDisk {
				t.Errorf("buffered peaks %d B RAM, %d B disk: over the caps %d, %d", memPeak, diskPeak, totalMem, totalDisk)
			}
			if diskPeak == 0 {
				t.Errorf("nothing was spooled to disk: the test did not reach the disk cap")
			}
			if len(arrived) == 0 || len(got) == 0 {
				t.Fatalf("%d uploads reached the upstream and %d were refused: want some of each", len(arrived), len(got))
			}
			for _, r := range got {
				if r.err != nil || r.status != http.StatusServiceUnavailable || r.retryAfter == "" {
					t.Errorf("a refused upload: status %d, Retry-After %q, error %v; want 503 with Retry-After", r.status, r.retryAfter, r.err)
				}
			}

			// Released, the held uploads complete, intact.
			close(up.release)
			sums := map[string]bool{}
			for _, s := range arrived {
				sums[s] = true
			}
			for range arrived {
				select {
				case r := <-results:
					if r.err != nil || r.status != 200 || r.body != r.sent || !sums[r.sent] {
						t.Errorf("a held upload: status %d, error %v, upstream's checksum %q, sent %q", r.status, r.err, r.body, r.sent)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("a released upload did not complete within 30s")
				}
			}
			retryUntil(t, 10*time.Second, "buffers released", func() error {
				if mem, disk, _, _ := bodies.usage(); mem != 0 || disk != 0 {
					return fmt.Errorf("%d B RAM and %d B disk still held", mem, disk)
				}
				return nil
			})
			// And the buffers serve the next upload.
			go func() { results <- upload("http://"+listen+"/upload", size, false, tt.expect) }()
			select {
			case <-up.arrived:
			case <-time.After(30 * time.Second):
				t.Fatal("an upload after the others did not reach the upstream within 30s")
			}
			if r := <-results; r.err != nil || r.status != 200 || r.body != r.sent {
				t.Errorf("an upload after the others: %d %v", r.status, r.err)
			}
		})
	}
}

// TestSpoolFiles: bodies past request_buffer_memory go to files that have
// no name in a dir only hostctl's user may enter, which is refused if
// someone else could.
func TestSpoolFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := checkSpoolDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode %#o, want 0700", fi.Mode().Perm())
	}
	f, err := openSpoolFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("body")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the spool dir lists %d entries while a body is spooled, want none", len(ents))
	}
	fi, _ := f.Stat()
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("spool file mode %#o", fi.Mode().Perm())
	}
	os.Chmod(dir, 0o755)
	if err := checkSpoolDir(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("a spool dir others may enter: %v", err)
	}
	os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		os.Chown(dir, 65534, 65534)
		if err := checkSpoolDir(dir); err == nil || !strings.Contains(err.Error(), "not owned") {
			t.Errorf("a spool dir of another user: %v", err)
		}
	}
}

// TestBufferConfig: the caps must leave room for one body.
func TestBufferConfig(t *testing.T) {
	errs := (&Config{Upstream: "127.0.0.1:1", RequestBufferTotalDisk: ptr(int64(1 << 20)), RequestBufferMemory: ptr(int64(-1))}).Validate("proxy")
	var keys []string
	for _, err := range errs {
		keys = append(keys, err.(*FieldError).Key)
	}
	if got := strings.Join(keys, " "); got != "proxy.request_buffer_memory proxy.request_buffer_total_disk" {
		t.Errorf("error keys %q\n%v", got, errs)
	}
}

// TestSpooledUploadWaitsForRestartingUpstream: an upload spooled to disk
// that finds its upstream restarting is sent whole once the upstream is
// back (the attempts that could not connect read nothing of it), through
// hostctl_upstream and through reverse_proxy.
func TestSpooledUploadWaitsForRestartingUpstream(t *testing.T) {
	for _, keepAlive := range []bool{false, true} {
		t.Run(map[bool]string{false: "hostctl_upstream", true: "reverse_proxy"}[keepAlive], func(t *testing.T) {
			up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sum := sha256.New()
				io.Copy(sum, r.Body)
				io.WriteString(w, hex.EncodeToString(sum.Sum(nil)))
			}))
			up.kill()
			attempts := make(chan struct{}, 64)
			listen := freeAddr(t)
			retry := 20 * time.Second
			startProxyHook(t, Config{Listen: listen, Upstream: up.addr, UpstreamKeepAlive: keepAlive, RetryFor: &retry},
				zapcore.DebugLevel, func(e zapcore.Entry) {
					if strings.Contains(e.Message, "upstream roundtrip") || strings.Contains(e.Message, "retrying") {
						select {
						case attempts <- struct{}{}:
						default:
						}
					}
				})
			results := make(chan uploadResult, 2)
			go func() { results <- upload("http://"+listen+"/", 1<<20, false, false) }()
			go func() { results <- upload("http://"+listen+"/", 1<<20, true, false) }()
			for range 4 { // both uploads spooled and failing to connect
				select {
				case <-attempts:
				case <-time.After(15 * time.Second):
					t.Fatal("the proxy made no attempt to reach the upstream within 15s")
				}
			}
			up.restart()
			for range 2 {
				select {
				case r := <-results:
					if r.err != nil || r.status != 200 || r.body != r.sent {
						t.Errorf("upload: %d %v, upstream's checksum %q, sent %q", r.status, r.err, r.body, r.sent)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("an upload did not complete within 30s of the restart")
				}
			}
		})
	}
}

// TestLateBodyReadAfterRelease: a read of a spooled body after its
// request ended (net/http's Transport can still be writing a body when
// the upstream has answered) fails; it never sees the RAM buffer, which
// the next request may hold, or the spool file.
func TestLateBodyReadAfterRelease(t *testing.T) {
	buf, class := memBuffer(10)
	copy(buf, "0123456789")
	b := &spooledBody{mem: buf[:10], memBuf: buf, memClass: class}
	rr := &releasingReader{r: b.reader(), b: b}
	p := make([]byte, 4)
	if n, err := rr.Read(p); n != 4 || err != nil || string(p) != "0123" {
		t.Fatalf("read before release: %d %v %q", n, err, p[:n])
	}
	rr.release()
	if n, err := rr.Read(p); n != 0 || err != errBodyReleased {
		t.Errorf("read after release: %d %v, want errBodyReleased", n, err)
	}
}
