package daemon

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hostctl/hostctl/proxy"
)

// TestAPIProxyStatus: the API's mirror of proxy.Status encodes exactly as
// proxy.Status with the reason beside it (the admin API's JSON before it
// had a type of its own), so a field added to proxy.Status and not to
// apitype.ProxyStatus fails here.
func TestAPIProxyStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   proxy.Status
		info string
	}{
		{"zero", proxy.Status{}, "waiting for app"},
		{"empty lists", proxy.Status{Listen: []string{}, Upstreams: []proxy.UpstreamStatus{}, Certificates: []proxy.CertificateStatus{}}, ""},
		{"running", proxy.Status{
			Running:      true,
			Listen:       []string{":443", ":80"},
			Upstreams:    []proxy.UpstreamStatus{{Address: "127.0.0.1:8000", Healthy: true, Fails: 1, Requests: 3}, {Address: "unix:/run/app.sock", Down: "health check failing"}},
			Certificates: []proxy.CertificateStatus{{Names: []string{"example.com", "www.example.com"}, Issuer: "acme", NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)}},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(struct {
				proxy.Status
				Info string `json:"info,omitempty"`
			}{tc.st, tc.info})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(apiProxyStatus(tc.st, tc.info))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("API JSON %s\nproxy JSON %s", got, want)
			}
		})
	}
}
