package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ServiceProbe is one probe of a service that hostctl does not run (a
// [check.NAME] of the config: Postgres, ElasticSearch, S3). It has the
// forms of a ready probe or health check, and runs through the same code:
// exactly one of TCP, HTTP, Exec. It never restarts anything.
type ServiceProbe struct {
	// TCP is "host:port" that must accept a connection.
	TCP string
	// HTTP is a URL that must answer GET with one of Status, and with a
	// body holding one of Body. Redirects are not followed.
	HTTP string
	// Status are the HTTP status codes that pass. Empty: 200 to 399.
	Status []int
	// Body, when set: the answer's body (its first BodyLimit bytes) must
	// contain one of these strings.
	Body []string
	// Exec is a command that must exit 0. It runs as User, never as
	// hostctl unless User is hostctl's own user, with HOME, USER, LOGNAME
	// and a fixed PATH, from "/", its output discarded.
	Exec Command
	// User runs Exec: its uid, gid and supplementary groups, looked up at
	// each run (the user database may change). Required with Exec.
	User string
	// Timeout bounds one run (the connection, the answer, the command,
	// which is killed with its process group). Required.
	Timeout time.Duration
}

// BodyLimit is how much of an HTTP answer's body a ServiceProbe reads.
const BodyLimit = 1 << 20

// ServiceProbePath is the PATH an exec ServiceProbe runs with.
const ServiceProbePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run probes once and returns nil, or why the probe failed in a few words
// for a person: "GET /_cluster/health: 503", "connect db:5432: connection
// refused", "connect db:5432: timed out after 5s", "check-db: exit status
// 1", "GET /_cluster/health: 200, but the body holds none of ...".
func (p *ServiceProbe) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var attr procAttr
	if len(p.Exec) > 0 {
		if p.User == "" {
			// The config refuses it too: never a command as root by default.
			return fmt.Errorf("%s: no user to run it as", p.Exec[0])
		}
		cred, err := credentialFor(p.User, "")
		if err != nil {
			return fmt.Errorf("%s: %w", p.Exec[0], err)
		}
		u, err := LookupUser(p.User)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Exec[0], err)
		}
		attr = procAttr{cred: cred, dir: "/", env: []string{"PATH=" + ServiceProbePath, "HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username}}
		// oomScoreAdj 0: the kernel's default, not hostctl's protected one.
	}
	err := probeTarget(ctx, p.TCP, p.HTTP, "", p.Exec, p.accept, attr)
	return describeProbeErr(ctx, err, p.TCP, p.HTTP, p.Exec, p.Timeout)
}

// accept judges an HTTP answer: its status, then its body.
func (p *ServiceProbe) accept(resp *http.Response) error {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 399
	if len(p.Status) > 0 {
		ok = slices.Contains(p.Status, resp.StatusCode)
	}
	if !ok {
		return statusError(resp.StatusCode)
	}
	if len(p.Body) == 0 {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, BodyLimit))
	if err != nil {
		return fmt.Errorf("%d, reading the body: %w", resp.StatusCode, err)
	}
	for _, want := range p.Body {
		if bytes.Contains(body, []byte(want)) {
			return nil
		}
	}
	quoted := make([]string, len(p.Body))
	for i, b := range p.Body {
		quoted[i] = strconv.Quote(b)
	}
	return fmt.Errorf("%d, but the body holds none of %s: %s", resp.StatusCode, strings.Join(quoted, ", "), excerpt(body, 120))
}

// excerpt is the start of b as one printable line of at most n runes.
func excerpt(b []byte, n int) string {
	var sb strings.Builder
	count := 0
	for _, r := range string(b) {
		if count == n {
			sb.WriteString("...")
			break
		}
		if !unicode.IsPrint(r) {
			r = ' '
		}
		sb.WriteRune(r)
		count++
	}
	return strings.Join(strings.Fields(sb.String()), " ")
}

// CheckExecutable returns the path that file (a path, or a name looked
// up in PATH) runs as a ServiceProbe's Exec, or why it cannot run.
func CheckExecutable(file string) (string, error) {
	return lookPath(file, "/")
}
