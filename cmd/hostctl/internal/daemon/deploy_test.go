package daemon

import (
	"slices"
	"testing"
)

// TestErrorLines: the lines that end a traceback are found in a crashing
// gunicorn's stderr, where gunicorn's own traceback (HaltServer) comes
// last and buries the cause.
func TestErrorLines(t *testing.T) {
	stderr := `[2026-12-07 21:51:02 +0000] [12] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/gunicorn/arbiter.py", line 589, in spawn_worker
    worker.init_process()
  File "/srv/releases/x/hello/wsgi.py", line 1, in <module>
    import no_such_module_v3
ModuleNotFoundError: No module named 'no_such_module_v3'
[2026-12-07 21:51:02 +0000] [12] [INFO] Worker exiting (pid: 12)
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/gunicorn/arbiter.py", line 525, in reap_workers
    raise HaltServer(reason, self.WORKER_BOOT_ERROR)
gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>
ModuleNotFoundError: No module named 'no_such_module_v3'
django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.
`
	got := errorLines(stderr)
	want := []string{
		"ModuleNotFoundError: No module named 'no_such_module_v3'",
		"django.core.exceptions.ImproperlyConfigured: The SECRET_KEY setting must not be empty.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errorLines = %q\nwant %q", got, want)
	}
	if got := errorLines("Booting worker with pid: 12\nListening at: unix:/run/x.sock\n"); len(got) != 0 {
		t.Errorf("no traceback: %q", got)
	}
}

// TestLineWriter: output arrives in pieces; each line is handed on once,
// whole, and what is left without a newline at the end by flush.
func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(l string) { got = append(got, l) }}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthr"))
	w.flush()
	if want := []string{"one", "two", "thr"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}
