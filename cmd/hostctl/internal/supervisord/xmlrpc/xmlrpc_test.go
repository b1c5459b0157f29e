package xmlrpc

import (
	"bytes"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// pyDumps runs Python's own encoder on a Python expression.
func pyDumps(t *testing.T, expr string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed (scripts/test-deps.sh installs it): %v", err)
	}
	out, err := exec.Command(py, "-c", "import sys, xmlrpc.client as x; sys.stdout.write("+expr+")").Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	return string(out)
}

// TestEncodeMatchesPython compares every kind of value with what Python's
// xmlrpc.client.dumps writes for it, byte for byte.
func TestEncodeMatchesPython(t *testing.T) {
	cases := []struct {
		name string
		v    any
		py   string // the same value in Python
	}{
		{"string", "a<&>\"' é", `"a<&>\"' é"`},
		{"empty string", "", `""`},
		{"int", 42, "42"},
		{"negative int", -7, "-7"},
		{"int32 bounds", []any{math.MaxInt32, math.MinInt32}, "[2147483647, -2147483648]"},
		{"bool", []any{true, false}, "[True, False]"},
		{"double", []any{1.5, 1.0, 0.1, 1e16, 1e-05, 0.0001, -2.5e-07, 123456789.125}, "[1.5, 1.0, 0.1, 1e16, 1e-05, 0.0001, -2.5e-07, 123456789.125]"},
		{"empty array", []any{}, "[]"},
		{"empty struct", Struct{}, "{}"},
		{"strings", []string{"a", "b"}, `["a", "b"]`},
		{"process info", Struct{{"name", "web"}, {"group", "web"}, {"pid", 12}, {"description", "pid 12, uptime 0:00:01"}},
			`{"name": "web", "group": "web", "pid": 12, "description": "pid 12, uptime 0:00:01"}`},
		{"nested", []any{[]any{[]string{"a"}, []string{}, []string{"b", "c"}}}, `[[["a"], [], ["b", "c"]]]`},
		{"list of structs", []Struct{{{"k", 1}}, {{"k", "v"}}}, `[{"k": 1}, {"k": "v"}]`},
		{"bytes", []byte("hi\x00"), `x.Binary(b"hi\x00")`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EncodeResponse(c.v)
			if err != nil {
				t.Fatal(err)
			}
			want := pyDumps(t, "x.dumps(("+c.py+",), methodresponse=True)")
			if string(got) != want {
				t.Errorf("got\n%s\nPython writes\n%s", got, want)
			}
		})
	}
	t.Run("fault", func(t *testing.T) {
		got := EncodeFault(&Fault{Code: 10, String: "BAD_NAME: nope<"})
		if want := pyDumps(t, `x.dumps(x.Fault(10, "BAD_NAME: nope<"))`); string(got) != want {
			t.Errorf("got\n%s\nPython writes\n%s", got, want)
		}
	})
	t.Run("call", func(t *testing.T) {
		got, err := EncodeCall("supervisor.startProcess", "web", false)
		if err != nil {
			t.Fatal(err)
		}
		if want := pyDumps(t, `x.dumps(("web", False), "supervisor.startProcess")`); string(got) != want {
			t.Errorf("got\n%s\nPython writes\n%s", got, want)
		}
	})
}

func TestEncodeRefuses(t *testing.T) {
	for name, v := range map[string]any{
		"int above 32 bits": int64(math.MaxInt32) + 1,
		"int below 32 bits": []any{int64(math.MinInt32) - 1},
		"unknown type":      struct{}{},
		"too deep":          deep(maxDepth + 2),
	} {
		t.Run(name, func(t *testing.T) {
			if b, err := EncodeResponse(v); err == nil {
				t.Errorf("encoded %s", b)
			}
		})
	}
}

func deep(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}

// TestEncodeReplacesWhatXMLCannotCarry: a log with control bytes or
// invalid UTF-8 must still give a reply Python can parse.
func TestEncodeReplacesWhatXMLCannotCarry(t *testing.T) {
	b, err := EncodeResponse("a\x00b\x1bc\xffd\te\r\nf")
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeResponse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\uFFFDb\uFFFDc\uFFFDd\te\nf"; v != want {
		t.Errorf("got %q, want %q", v, want)
	}
}

func TestDecodeCall(t *testing.T) {
	cases := []struct {
		name, in string
		want     *Call
	}{
		{"python call", pyCall, &Call{Method: "supervisor.readProcessStdoutLog", Params: []any{"web", int64(-1600), int64(0)}}},
		{"no params element", "<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName></methodCall>",
			&Call{Method: "supervisor.getState", Params: []any{}}},
		{"untyped value is a string", "<methodCall><methodName>m</methodName><params><param><value>plain &amp; text</value></param></params></methodCall>",
			&Call{Method: "m", Params: []any{"plain & text"}}},
		{"every type", `<methodCall><methodName>m</methodName><params><param><value><array><data>
<value><i4>1</i4></value><value><i8>-9000000000</i8></value><value><boolean>1</boolean></value><value><double>2.5</double></value>
<value><base64>aGk=</base64></value><value><dateTime.iso8601>20261126T10:00:00</dateTime.iso8601></value><value><nil/></value>
<value><struct><member><name>methodName</name><value><string>x.y</string></value></member><member><name>params</name><value><array><data></data></array></value></member></struct></value>
</data></array></value></param></params></methodCall>`,
			&Call{Method: "m", Params: []any{[]any{int64(1), int64(-9000000000), true, 2.5, []byte("hi"), "20261126T10:00:00", nil,
				Struct{{"methodName", "x.y"}, {"params", []any{}}}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeCall(strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

const pyCall = "<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.readProcessStdoutLog</methodName>\n<params>\n<param>\n<value><string>web</string></value>\n</param>\n<param>\n<value><int>-1600</int></value>\n</param>\n<param>\n<value><int>0</int></value>\n</param>\n</params>\n</methodCall>\n"

func TestDecodeCallRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":           "",
		"not xml":         "hello",
		"truncated":       "<methodCall><methodName>m</methodName><params><param><value><int>1",
		"wrong root":      "<methodResponse/>",
		"no method name":  "<methodCall><params/></methodCall>",
		"empty name":      "<methodCall><methodName> </methodName></methodCall>",
		"bad int":         "<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
		"bad boolean":     "<methodCall><methodName>m</methodName><params><param><value><boolean>yes</boolean></value></param></params></methodCall>",
		"unknown type":    "<methodCall><methodName>m</methodName><params><param><value><blob>1</blob></value></param></params></methodCall>",
		"two values":      "<methodCall><methodName>m</methodName><params><param><value>a</value><value>b</value></param></params></methodCall>",
		"member no value": "<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>",
		"entity":          `<!DOCTYPE x [<!ENTITY e "boom">]><methodCall><methodName>&e;</methodName></methodCall>`,
		"undefined ent":   "<methodCall><methodName>&e;</methodName></methodCall>",
		"trailing junk":   "<methodCall><methodName>m</methodName></methodCall><x/>",
		"too deep":        "<methodCall><methodName>m</methodName><params><param><value>" + strings.Repeat("<array><data><value>", maxDepth+2) + "x" + strings.Repeat("</value></data></array>", maxDepth+2) + "</value></param></params></methodCall>",
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := DecodeCall(strings.NewReader(in)); err == nil {
				t.Errorf("decoded %#v", c)
			}
		})
	}
}

// FuzzDecodeCall: no input makes the decoder panic, and whatever it
// accepts encodes and decodes back to the same values.
func FuzzDecodeCall(f *testing.F) {
	f.Add(pyCall)
	f.Add("<methodCall><methodName>system.multicall</methodName><params><param><value><array><data><value><struct><member><name>methodName</name><value>supervisor.getPID</value></member></struct></value></data></array></value></param></params></methodCall>")
	f.Add("<methodCall><methodName>m</methodName><params><param><value><double>1e400</double></value></param></params></methodCall>")
	f.Add("<methodCall><methodName>m</methodName><params><param><value><base64>!!</base64></value></param></params></methodCall>")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := DecodeCall(strings.NewReader(in))
		if err != nil {
			return
		}
		b, err := EncodeCall(c.Method, c.Params...)
		if err != nil {
			return // values Python would not send either (ints over 32 bits, nil)
		}
		c2, err := DecodeCall(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-decoding our own encoding of %q: %v\n%s", in, err, b)
		}
		if !sameValues(c.Params, c2.Params) {
			t.Fatalf("round trip changed %#v into %#v", c.Params, c2.Params)
		}
	})
}

// sameValues compares decoded values, treating NaN as equal to itself and
// strings by what survives encoding (U+FFFD for what XML cannot carry, CR
// read back as LF).
func sameValues(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case string:
		var buf bytes.Buffer
		escape(&buf, x)
		c, err := DecodeCall(strings.NewReader("<methodCall><methodName>m</methodName><params><param><value>" + buf.String() + "</value></param></params></methodCall>"))
		return err == nil && c.Params[0] == b
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case Struct:
		y, ok := b.(Struct)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValues(x[i].Name, y[i].Name) || !sameValues(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
