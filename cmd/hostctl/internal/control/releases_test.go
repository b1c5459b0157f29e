package control

import (
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/metrics"
)

// fakeReleases is [deploy] as the daemon reports it, with the real
// record of deploys.
type fakeReleases struct {
	resp    apitype.ReleasesResponse
	deploys *metrics.Deploys
}

func (f *fakeReleases) Releases() (apitype.ReleasesResponse, error) {
	r := f.resp
	r.Deploys = f.deploys.Last()
	return r, nil
}
func (f *fakeReleases) DeployCounts() map[string]uint64 { return f.deploys.Counts() }

// GET /v1/releases answers through the typed client with the live
// release and the last deploys; /metrics counts the deploys by result
// (every result, 0 included) and names the live release, its commit and
// slot; without [deploy], an empty answer and no deploy series.
func TestReleasesAPIAndMetrics(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	live := apitype.Release{ID: "20261207T210000Z-abc1234", SHA: "abc1234def5678", Source: "git /srv/repo main", Created: t0,
		BuildSeconds: 12.5, State: apitype.ReleaseLive, Slot: "b", LiveSince: t0.Add(time.Minute)}
	failed := apitype.Release{ID: "20261207T220000Z-bad0001", SHA: "bad0001", Created: t0.Add(time.Hour), BuildSeconds: 3,
		State: apitype.ReleaseFailed, Reason: "gunicorn@a did not start: FATAL: ModuleNotFoundError: No module named 'x'"}
	f := &fakeReleases{deploys: metrics.NewDeploys("", nil),
		resp: apitype.ReleasesResponse{Configured: true, Live: &live, Releases: []apitype.Release{failed, live}}}
	f.deploys.Add(apitype.DeployRecord{Release: live.ID, Result: apitype.DeployOK, Started: t0, Ended: t0.Add(time.Minute), Seconds: 60})
	f.deploys.Add(apitype.DeployRecord{Release: failed.ID, Result: apitype.DeployFailed, Step: "gate", Reason: failed.Reason,
		LastLines: []string{"ModuleNotFoundError: No module named 'x'"}, Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour + 30*time.Second), Seconds: 30})

	srv := httptest.NewServer(New(Options{Programs: newFake(), Releases: f}).Handler(false))
	defer srv.Close()
	got, err := (&client.Client{URL: srv.URL}).Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Configured || got.Live == nil || !reflect.DeepEqual(*got.Live, live) || len(got.Releases) != 2 || !reflect.DeepEqual(got.Releases[0], failed) {
		t.Errorf("Releases() = %+v", got)
	}
	if len(got.Deploys) != 2 || got.Deploys[0].Result != apitype.DeployFailed || got.Deploys[0].LastLines[0] != "ModuleNotFoundError: No module named 'x'" || got.Deploys[1].Result != apitype.DeployOK {
		t.Errorf("Releases().Deploys = %+v, want the failed deploy, then the good one", got.Deploys)
	}
	b := string(getBody(t, srv.URL+"/metrics"))
	for _, w := range []string{
		`hostctl_deploys_total{result="ok"} 1`,
		`hostctl_deploys_total{result="failed"} 1`,
		`hostctl_deploys_total{result="rolled_back"} 0`,
		`hostctl_deploys_total{result="canceled"} 0`,
		`hostctl_release_info{release="20261207T210000Z-abc1234",sha="abc1234def5678",slot="b"} 1`,
	} {
		if !strings.Contains(b, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if n := strings.Count(b, "\nhostctl_release_info{"); n != 1 {
		t.Errorf("/metrics has %d hostctl_release_info series, want the live one only", n)
	}

	none := httptest.NewServer(New(Options{Programs: newFake()}).Handler(false))
	defer none.Close()
	if got := strings.Join(strings.Fields(string(getBody(t, none.URL+"/v1/releases"))), ""); got != `{"configured":false,"live":null,"releases":[],"deploys":[]}` {
		t.Errorf("GET /v1/releases without [deploy] = %s", got)
	}
	if b := string(getBody(t, none.URL+"/metrics")); strings.Contains(b, "hostctl_deploys_total") || strings.Contains(b, "hostctl_release_info") {
		t.Errorf("/metrics has deploy series without [deploy]")
	}
}
