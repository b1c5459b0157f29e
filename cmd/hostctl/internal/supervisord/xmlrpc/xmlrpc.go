// Package xmlrpc is the XML-RPC codec of hostctl's supervisord-compatible
// API: it reads a methodCall and writes a methodResponse byte for byte as
// Python's xmlrpc.client.dumps does (supervisord's own encoder), so that
// supervisorctl, xmlrpc.client and supervisord's other clients read it as
// they read supervisord's answers.
//
// Values map to Go as follows (both ways unless said):
//
//	<int>, <i4>        int (encoding); int64 (decoding, also <i1> <i2> <i8>)
//	<boolean>          bool
//	<string>, untyped  string
//	<double>           float64
//	<array>            []any
//	<struct>           Struct (members in order, as Python's dicts keep them)
//	<base64>           []byte
//	<dateTime.iso8601> string as sent (decoding only)
//	<nil/>             nil (decoding only; Python sends it with allow_none)
//
// Integers must fit in 32 bits, as in Python's encoder: Encode refuses
// larger ones rather than send what a client would reject. Strings are sent
// as Python sends them (only &, < and > escaped), except that bytes that
// XML cannot carry (invalid UTF-8, control characters other than tab, CR
// and LF) become U+FFFD, where Python would send a reply its own parser
// then rejects.
package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Member is one member of a Struct.
type Member struct {
	Name  string
	Value any
}

// Struct is an XML-RPC struct; members are written in slice order.
type Struct []Member

// Get returns the value of the first member called name.
func (s Struct) Get(name string) (any, bool) {
	for _, m := range s {
		if m.Name == name {
			return m.Value, true
		}
	}
	return nil, false
}

// Fault is an XML-RPC fault: the answer to a call that failed.
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.String) }

// Call is a decoded methodCall.
type Call struct {
	Method string
	Params []any
}

// maxDepth bounds the nesting of arrays and structs in a request, so that a
// hostile body cannot make the decoder recurse without end.
const maxDepth = 64

// ErrNoMethod is returned for a methodCall without a methodName.
var ErrNoMethod = errors.New("xmlrpc: methodCall has no methodName")

// DecodeCall reads one methodCall from r. Every malformed input gives an
// error (never a panic): the caller answers it with a Fault.
func DecodeCall(r io.Reader) (*Call, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	root, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if root.Name.Local != "methodCall" {
		return nil, fmt.Errorf("xmlrpc: root element is <%s>, not <methodCall>", root.Name.Local)
	}
	c := &Call{Params: []any{}}
	seenName := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "methodName":
				s, err := text(d)
				if err != nil {
					return nil, err
				}
				c.Method, seenName = strings.TrimSpace(s), true
			case "params":
				if c.Params, err = params(d); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <methodCall>", t.Name.Local)
			}
		case xml.EndElement:
			if !seenName || c.Method == "" {
				return nil, ErrNoMethod
			}
			if err := trailing(d); err != nil {
				return nil, err
			}
			return c, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xmlrpc: text directly in <methodCall>")
			}
		}
	}
}

// nextStart skips the prolog (declaration, comments, whitespace) and
// returns the root element.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, errors.New("xmlrpc: empty request body")
		}
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, errors.New("xmlrpc: text before the root element")
			}
		case xml.Directive:
			return xml.StartElement{}, errors.New("xmlrpc: DTDs are not accepted")
		}
	}
}

// trailing checks that only whitespace, comments and processing
// instructions follow the root element.
func trailing(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("xmlrpc: text after the root element")
			}
		case xml.StartElement, xml.Directive:
			return errors.New("xmlrpc: content after the root element")
		}
	}
}

// text reads character data up to the end of the current element, which
// must contain no elements.
func text(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("xmlrpc: unexpected <%s> in a text element", t.Name.Local)
		}
	}
}

// params reads <param><value>...</value></param>... up to </params>.
func params(d *xml.Decoder) ([]any, error) {
	out := []any{}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <params>", t.Name.Local)
			}
			v, err := wrapped(d, "param", 0)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case xml.EndElement:
			return out, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xmlrpc: text directly in <params>")
			}
		}
	}
}

// wrapped reads the one <value> inside an element (param, member's value
// holder, data item) up to the element's end.
func wrapped(d *xml.Decoder, in string, depth int) (any, error) {
	var v any
	seen := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "value" || seen {
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <%s>", t.Name.Local, in)
			}
			if v, err = value(d, depth); err != nil {
				return nil, err
			}
			seen = true
		case xml.EndElement:
			if !seen {
				return nil, fmt.Errorf("xmlrpc: <%s> without a <value>", in)
			}
			return v, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("xmlrpc: text directly in <%s>", in)
			}
		}
	}
}

// value reads the inside of a <value> (its start already read) up to
// </value>: a typed element, or text (a string).
func value(d *xml.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("xmlrpc: values nested deeper than %d", maxDepth)
	}
	var raw strings.Builder
	var v any
	typed := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			raw.Write(t)
		case xml.StartElement:
			if typed {
				return nil, fmt.Errorf("xmlrpc: a <value> holds one type, then <%s>", t.Name.Local)
			}
			if v, err = typedValue(d, t.Name.Local, depth); err != nil {
				return nil, err
			}
			typed = true
		case xml.EndElement:
			if typed {
				if len(strings.TrimSpace(raw.String())) > 0 {
					return nil, errors.New("xmlrpc: text beside a typed value")
				}
				return v, nil
			}
			return raw.String(), nil
		}
	}
}

func typedValue(d *xml.Decoder, typ string, depth int) (any, error) {
	switch typ {
	case "array":
		return array(d, depth)
	case "struct":
		return structValue(d, depth)
	case "nil":
		if _, err := text(d); err != nil {
			return nil, err
		}
		return nil, nil
	}
	s, err := text(d)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "string":
		return s, nil
	case "int", "i4", "i1", "i2", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: bad <%s> %q", typ, s)
		}
		return n, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("xmlrpc: bad <boolean> %q (0 or 1)", s)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: bad <double> %q", s)
		}
		return f, nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: bad <base64>: %w", err)
		}
		return b, nil
	case "dateTime.iso8601":
		return strings.TrimSpace(s), nil
	}
	return nil, fmt.Errorf("xmlrpc: unknown type <%s>", typ)
}

// array reads <data><value>...</value>...</data></array> (after <array>).
func array(d *xml.Decoder, depth int) (any, error) {
	out := []any{}
	inData := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !inData && t.Name.Local == "data":
				inData = true
			case inData && t.Name.Local == "value":
				v, err := value(d, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			default:
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <array>", t.Name.Local)
			}
		case xml.EndElement:
			if t.Name.Local == "array" {
				return out, nil
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xmlrpc: text directly in <array>")
			}
		}
	}
}

// structValue reads <member><name>..</name><value>..</value></member>...
// up to </struct>.
func structValue(d *xml.Decoder, depth int) (any, error) {
	out := Struct{}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "member" {
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <struct>", t.Name.Local)
			}
			m, err := member(d, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		case xml.EndElement:
			return out, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xmlrpc: text directly in <struct>")
			}
		}
	}
}

func member(d *xml.Decoder, depth int) (Member, error) {
	var m Member
	seenName, seenValue := false, false
	for {
		tok, err := d.Token()
		if err != nil {
			return m, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "name" && !seenName:
				if m.Name, err = text(d); err != nil {
					return m, err
				}
				seenName = true
			case t.Name.Local == "value" && !seenValue:
				if m.Value, err = value(d, depth+1); err != nil {
					return m, err
				}
				seenValue = true
			default:
				return m, fmt.Errorf("xmlrpc: unexpected <%s> in <member>", t.Name.Local)
			}
		case xml.EndElement:
			if !seenName || !seenValue {
				return m, errors.New("xmlrpc: <member> needs a <name> and a <value>")
			}
			return m, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return m, errors.New("xmlrpc: text directly in <member>")
			}
		}
	}
}

// EncodeResponse returns the methodResponse carrying v as its one param,
// formatted as Python's xmlrpc.client.dumps((v,), methodresponse=True).
func EncodeResponse(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	if err := encodeValue(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes(), nil
}

// EncodeFault returns the methodResponse carrying f, formatted as Python's
// xmlrpc.client.dumps(Fault(code, string)).
func EncodeFault(f *Fault) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n")
	encodeValue(&b, Struct{{"faultCode", f.Code}, {"faultString", f.String}}, 0) // cannot fail: an int32 code is checked below
	b.WriteString("</fault>\n</methodResponse>\n")
	return b.Bytes()
}

// encodeValue writes one <value>...</value>\n as Python's Marshaller does.
func encodeValue(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("xmlrpc: values nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case string:
		b.WriteString("<value><string>")
		escape(b, x)
		b.WriteString("</string></value>\n")
	case int:
		return encodeInt(b, int64(x))
	case int64:
		return encodeInt(b, x)
	case int32:
		return encodeInt(b, int64(x))
	case bool:
		n := "0"
		if x {
			n = "1"
		}
		b.WriteString("<value><boolean>" + n + "</boolean></value>\n")
	case float64:
		b.WriteString("<value><double>" + pyFloat(x) + "</double></value>\n")
	case []byte:
		b.WriteString("<value><base64>\n" + base64.StdEncoding.EncodeToString(x) + "\n</base64></value>\n")
	case []any:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			if err := encodeValue(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString("</data></array></value>\n")
	case []string:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			encodeValue(b, e, depth+1)
		}
		b.WriteString("</data></array></value>\n")
	case []Struct:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			if err := encodeValue(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString("</data></array></value>\n")
	case Struct:
		b.WriteString("<value><struct>\n")
		for _, m := range x {
			b.WriteString("<member>\n<name>")
			escape(b, m.Name)
			b.WriteString("</name>\n")
			if err := encodeValue(b, m.Value, depth+1); err != nil {
				return err
			}
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>\n")
	default:
		return fmt.Errorf("xmlrpc: cannot encode %T", v)
	}
	return nil
}

func encodeInt(b *bytes.Buffer, n int64) error {
	if n < math.MinInt32 || n > math.MaxInt32 {
		return fmt.Errorf("xmlrpc: int %d exceeds XML-RPC limits (32 bits)", n)
	}
	b.WriteString("<value><int>" + strconv.FormatInt(n, 10) + "</int></value>\n")
	return nil
}

// pyFloat formats f as Python's repr does.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64) // two exponent digits at least, as Python
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// escape writes s as Python's xmlrpc escape does (&, <, >), replacing what
// XML cannot carry with U+FFFD.
func escape(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == utf8.RuneError && n == 1, !xmlChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
}

// xmlChar reports whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// EncodeCall returns a methodCall as Python's xmlrpc.client.dumps(params,
// method) writes it.
func EncodeCall(method string, params ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>")
	escape(&b, method)
	b.WriteString("</methodName>\n<params>\n")
	for _, p := range params {
		b.WriteString("<param>\n")
		if err := encodeValue(&b, p, 0); err != nil {
			return nil, err
		}
		b.WriteString("</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.Bytes(), nil
}

// DecodeResponse reads a methodResponse: its one value, or a *Fault as the
// error.
func DecodeResponse(r io.Reader) (any, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	root, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if root.Name.Local != "methodResponse" {
		return nil, fmt.Errorf("xmlrpc: root element is <%s>, not <methodResponse>", root.Name.Local)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "params":
				ps, err := params(d)
				if err != nil {
					return nil, err
				}
				if len(ps) != 1 {
					return nil, fmt.Errorf("xmlrpc: response has %d params, not 1", len(ps))
				}
				return ps[0], nil
			case "fault":
				v, err := wrapped(d, "fault", 0)
				if err != nil {
					return nil, err
				}
				s, _ := v.(Struct)
				code, _ := s.Get("faultCode")
				str, _ := s.Get("faultString")
				c, ok1 := code.(int64)
				fs, ok2 := str.(string)
				if !ok1 || !ok2 {
					return nil, errors.New("xmlrpc: malformed fault")
				}
				return nil, &Fault{Code: int(c), String: fs}
			}
			return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <methodResponse>", t.Name.Local)
		}
	}
}
