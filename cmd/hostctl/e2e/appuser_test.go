package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"
)

// adminAppUser is the unprivileged user that plays the app's user (and
// the other local users) in the admin API's security tests. It is made
// once and never deleted: other test packages may use theirs meanwhile.
const adminAppUser = "hct-admin"

// appUser creates adminAppUser if it does not exist (useradd's exit
// status 9: it does) and returns its uid and gid.
func appUser(t testing.TB) (uid, gid string) {
	t.Helper()
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", adminAppUser).CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); err != nil && !(ok && ee.ExitCode() == 9) {
		t.Fatalf("useradd %s: %v\n%s", adminAppUser, err, out)
	}
	u, err := user.Lookup(adminAppUser)
	if err != nil {
		t.Fatal(err)
	}
	return u.Uid, u.Gid
}

// asAppUser runs name with args as adminAppUser (setpriv: its uid and
// gid, no supplementary groups), with stdin, and returns its stdout; a
// failure to run at all ends the test.
func asAppUser(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	uid, gid := appUser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--", name}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/"}
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(stdin)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("as %s: %s %v: %v\n%s%s", adminAppUser, name, args, err, out, errb.String())
	}
	return string(out)
}

// httpReq is one request of an attack run by httpAsAppUser.
type httpReq struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// httpResp is its answer; Status 0 when there was none (Body says why).
type httpResp struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// pythonHTTP sends the requests read as JSON from stdin with Python's
// urllib (no proxies, the CA file of argv[1] if any) and prints each
// answer's status and body.
const pythonHTTP = `
import json, ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[1]) if len(sys.argv) > 1 else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
out = []
for r in json.load(sys.stdin):
    body = r.get("body", "").encode() or None
    req = urllib.request.Request(r["url"], data=body, method=r["method"], headers=r.get("headers") or {})
    try:
        with opener.open(req, timeout=30) as resp:
            out.append({"status": resp.status, "body": resp.read().decode("utf-8", "replace")})
    except urllib.error.HTTPError as e:
        out.append({"status": e.code, "body": e.read().decode("utf-8", "replace")})
    except Exception as e:
        out.append({"status": 0, "body": repr(e)})
print(json.dumps(out))
`

// httpAsAppUser sends reqs as adminAppUser, from its own process, and
// returns the answers in order. caFile, if set, is the CA for https.
func httpAsAppUser(t testing.TB, caFile string, reqs []httpReq) []httpResp {
	t.Helper()
	in, _ := json.Marshal(reqs)
	args := []string{"-c", pythonHTTP}
	if caFile != "" {
		args = append(args, caFile)
	}
	out := asAppUser(t, string(in), "python3", args...)
	var res []httpResp
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != len(reqs) {
		t.Fatalf("python: %v: %s", err, out)
	}
	return res
}

// writeSecret writes a token file only root can read.
func writeSecret(t testing.TB, dir, name, token string) string {
	t.Helper()
	path := dir + "/" + name
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
