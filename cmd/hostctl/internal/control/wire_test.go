package control

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
)

// TestWireMatchesTheEngines: the wire types encode exactly as the
// supervisor's and the alert manager's own types did when the API sent
// those (every field set, and every field zero), so a field added there
// and not to apitype, or converted wrongly, fails here.
func TestWireMatchesTheEngines(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	full := supervisor.Status{}
	fill(t, reflect.ValueOf(&full).Elem(), t0)
	full.State = supervisor.Backoff
	for _, st := range []supervisor.Status{{}, full} {
		same(t, "status", apiStatus(st), st)
	}
	if apiStatus(full).Health == nil || apiStatus(full).LastExit == nil {
		t.Fatal("fill left the pointers nil")
	}

	var a alert.Alert
	fill(t, reflect.ValueOf(&a).Elem(), t0)
	a.Details = map[string]any{"exit_code": 1.0}
	var sink alert.SinkStatus
	fill(t, reflect.ValueOf(&sink).Elem(), t0)
	alerts, sinks := apiAlerts([]alert.Alert{a, {}}, []alert.SinkStatus{sink, {}})
	same(t, "alerts", alerts, []alert.Alert{a, {}})
	same(t, "sinks", sinks, []alert.SinkStatus{sink, {}})
	if alerts, sinks := apiAlerts(nil, nil); alerts == nil || sinks == nil {
		t.Error("no alerts must be [], never null")
	}
	var res alert.TestResult
	fill(t, reflect.ValueOf(&res).Elem(), t0)
	same(t, "test results", apiAlertTests([]alert.TestResult{res}), []alert.TestResult{res})

	d := supervisor.Diff{Added: []string{"a"}, Changed: []string{"c"}}
	same(t, "reload", apiReload(Reloaded{Diff: d, Proxy: "reloaded"}), struct {
		supervisor.Diff
		Proxy string `json:"proxy,omitempty"`
	}{d, "reloaded"})
}

// same fails unless got and want encode to the same JSON.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s on the wire:\n%s\nthe engine's own JSON:\n%s", what, g, w)
	}
}

// fill sets every field of v to a value that is not its zero value.
func fill(t *testing.T, v reflect.Value, t0 time.Time) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			v.SetInt(int64(time.Second))
		} else {
			v.SetInt(7)
		}
	case reflect.Uint8, reflect.Uint64:
		v.SetUint(3)
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), t0)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), t0)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(t0))
			return
		}
		for i := range v.NumField() {
			// A field the engine keeps off the wire (json:"-") has no
			// wire value to compare.
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
				fill(t, v.Field(i), t0)
			}
		}
	default:
		t.Fatalf("fill: no value for a %s", v.Type())
	}
}

// The wire types are what the client decodes: a process survives the
// round trip.
func TestProcessRoundTrip(t *testing.T) {
	var p apitype.Process
	fill(t, reflect.ValueOf(&p).Elem(), time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	p.State = apitype.Running
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back apitype.Process
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("round trip: %+v, %v\nwant %+v", back, err, p)
	}
}
