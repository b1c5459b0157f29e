package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryFileKeyIsChecked: every key that names a file hostctl reads
// and believes (*_file) carries a trust tag, so that the decoder checks
// it with trust.ReadFile: a new token, key or CA file key cannot be added
// without saying whether it is a secret.
func TestEveryFileKeyIsChecked(t *testing.T) {
	// Files that may be someone else's, and why.
	public := map[string]string{
		"proxy.cert_file":        "a certificate is public, and one swapped without its key_file (checked) cannot be served",
		"proxy.site[].cert_file": "as proxy.cert_file",
	}
	seen := map[reflect.Type]bool{}
	var walk func(path string, t reflect.Type)
	found := 0
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			if typ.Kind() != reflect.Pointer {
				path += "[]"
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		defer delete(seen, typ)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := join(path, name)
			if strings.HasSuffix(name, "_file") && f.Type.Kind() == reflect.String {
				found++
				if tag := f.Tag.Get("trust"); tag != "secret" && tag != "config" && public[key] == "" {
					t.Errorf("%s (%s.%s): no trust:\"secret\" or trust:\"config\" tag", key, typ, f.Name)
				}
			}
			walk(key, f.Type)
		}
	}
	ft := reflect.TypeOf(File{})
	for i := 0; i < ft.NumField(); i++ {
		f := ft.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			name = strings.ToLower(f.Name)
		}
		walk(name, f.Type)
	}
	if found < 8 {
		t.Errorf("found %d *_file keys; the walk looks broken", found)
	}
}
