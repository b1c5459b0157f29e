package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/proxy"
)

// TestStorageAndFleet reads [proxy.storage] (a table inside [proxy]) and
// [[fleet.host]] (an array of tables) from a file: values decoded, and
// every problem reported with its line and key path.
func TestStorageAndFleet(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "web1.token")
	os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600)
	pass := filepath.Join(dir, "redis.password")
	os.WriteFile(pass, []byte("s3cret\n"), 0o600)
	head := "[admin]\nsocket = \"/run/x.sock\"\nstate_dir = \"/var/lib/x\"\n\n[proxy]\nlisten = \"127.0.0.1:8080\"\nupstream = \"127.0.0.1:8000\"\n\n"

	good := head + `[proxy.storage]
type = "redis"
address = "10.0.0.5:6379"
tls = true
password_file = "` + pass + `"
db = 2
timeout = "3s"

[fleet]
timeout = "2s"

[[fleet.host]]
name = "web1"
url = "https://10.0.0.11:9001"
token_file = "` + token + `"
`
	f, err := Parse("good.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if st := f.Proxy.Storage; st.Type != proxy.StorageRedis || st.Address != "10.0.0.5:6379" || st.DB != 2 || st.Timeout != 3*time.Second {
		t.Errorf("proxy.storage = %+v", st)
	}
	if f.Fleet.Timeout != 2*time.Second || len(f.Fleet.Hosts) != 1 || f.Fleet.Hosts[0].Name != "web1" {
		t.Errorf("fleet = %+v", f.Fleet)
	}

	bad := head + `[proxy.storage]
type = "redis"
adress = "10.0.0.5:6379"
db = -1

[[fleet.host]]
name = "web1"
url = "10.0.0.11:9001"
token_file = "` + filepath.Join(dir, "missing") + `"
`
	_, err = Parse("bad.toml", []byte(bad))
	want := []string{
		`bad.toml:9: proxy.storage.address: required with type = "redis"`, // at the table's line
		`bad.toml:11: proxy.storage.adress: unknown key (did you mean "address"?)`,
		`bad.toml:12: proxy.storage.db: must not be negative`,
		`bad.toml:16: fleet.host[0].url: "10.0.0.11:9001" is not an http:// or https:// URL`,
		`bad.toml:17: fleet.host[0].token_file: cannot read "`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no %q in:\n%v", w, err)
		}
	}
}
