package control

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
)

// fakeDrainer records what the API asked of it.
type fakeDrainer struct {
	err          error
	draining     bool
	wait, quiet  time.Duration
	undrainCalls int
}

func (f *fakeDrainer) DrainStatus() (apitype.DrainStatus, error) {
	return apitype.DrainStatus{Draining: f.draining, HealthPath: "/.hostctl/health"}, f.err
}

func (f *fakeDrainer) Drain(ctx context.Context, wait, quiet time.Duration) (apitype.DrainStatus, error) {
	f.draining, f.wait, f.quiet = true, wait, quiet
	return apitype.DrainStatus{Draining: true, HealthPath: "/.hostctl/health", Quiet: wait > 0}, f.err
}

func (f *fakeDrainer) Undrain(ctx context.Context, wait time.Duration) (apitype.DrainStatus, error) {
	f.draining, f.wait = false, wait
	f.undrainCalls++
	return apitype.DrainStatus{HealthPath: "/.hostctl/health", SeenHealthy: wait > 0}, f.err
}

// TestDrainAPI: the drain endpoints pass the wait and quiet period on
// (5 s by default), check them, answer 409 without health_path and 503
// without a drainer; the drain state is in the metrics.
func TestDrainAPI(t *testing.T) {
	fd := &fakeDrainer{}
	s := New(Options{Programs: newFake(), Drain: fd, Proxy: func() (apitype.ProxyStatus, bool) {
		return apitype.ProxyStatus{Running: true, Drain: &apitype.DrainStatus{Draining: fd.draining, InFlight: 2}}, true
	}})
	srv := httptest.NewServer(s.Handler(false))
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	ctx := context.Background()

	st, err := c.StartDrain(ctx, 30*time.Second, 0)
	if err != nil || !st.Draining || !st.Quiet || fd.wait != 30*time.Second || fd.quiet != 5*time.Second {
		t.Errorf("StartDrain: %+v %v; the drainer got wait %s quiet %s, want 30s and the default 5s", st, err, fd.wait, fd.quiet)
	}
	if st, err := c.Drain(ctx); err != nil || !st.Draining {
		t.Errorf("Drain (GET): %+v %v", st, err)
	}
	b := getBody(t, srv.URL+"/metrics")
	for _, want := range []string{"hostctl_proxy_draining 1", "hostctl_proxy_requests_in_flight 2"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if st, err := c.Undrain(ctx, 10*time.Second); err != nil || st.Draining || !st.SeenHealthy || fd.undrainCalls != 1 {
		t.Errorf("Undrain: %+v %v (calls %d)", st, err, fd.undrainCalls)
	}
	var ae *client.APIError
	if _, err := c.StartDrain(ctx, 11*time.Minute, 0); !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		t.Errorf("a wait over 10 minutes: %v, want 400", err)
	}

	fd.err = ErrNoHealthPath
	if _, err := c.StartDrain(ctx, 0, 0); !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !strings.Contains(ae.Message, "health_path") {
		t.Errorf("without health_path: %v, want 409 naming health_path", err)
	}

	none := httptest.NewServer(New(Options{Programs: newFake()}).Handler(false))
	defer none.Close()
	if _, err := (&client.Client{URL: none.URL}).Drain(ctx); !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without a drainer: %v, want 503", err)
	}
}
