package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// A unix-socket upstream usually lives in a directory the app's user can
// write (gunicorn creates its socket there), and the proxy runs as root.
// Dialing such a path as net.Dial does would follow a symlink the app's
// user put there, to hostctl's own admin socket, docker.sock or any other
// root-owned socket, and hand it every visitor's request: a confused
// deputy. So every dial of a unix upstream, by Caddy's reverse_proxy
// (CheckedTransport), hostctl_upstream and a forced health check, goes
// through dialUnix:
//   - the last component of the path is opened O_PATH|O_NOFOLLOW (a
//     symlink there is refused), fstat must say it is a socket, and the
//     connection is made to that very inode through /proc/self/fd/N;
//   - SO_PEERCRED of the connection is read: a peer that is hostctl
//     itself is refused, and so is one whose uid is not a uid of the
//     programs that serve the upstream (Config.UpstreamPeers), when
//     hostctl runs such a program.
// Both are checked once per new connection; a keep-alive connection is
// reused without another check.

// PeerError is a unix upstream connection refused because of its peer
// (or of what the path is). It is a dial error: the request is retried
// (try_duration) and then answered 502.
type PeerError struct {
	Path string
	Pid  int32 // the peer's pid, 0 if no connection was made
	UID  uint32
	Why  string
}

func (e *PeerError) Error() string {
	if e.Pid == 0 {
		return fmt.Sprintf("unix upstream %s refused: %s", e.Path, e.Why)
	}
	return fmt.Sprintf("unix upstream %s refused: %s (peer pid %d, uid %d)", e.Path, e.Why, e.Pid, e.UID)
}

// peerTable is which uids may listen on each unix upstream socket path:
// the uids of the programs hostctl runs that serve it. A path it does not
// list is checked only against hostctl's own pid. It is replaced whole
// (set) by Apply and SwapUpstreams and read on every new connection.
type peerTable struct {
	m atomic.Pointer[map[string][]uint32]
}

func newPeerTable() *peerTable { return &peerTable{} }

// set makes the table the unix upstreams of peers (canonical upstream
// address or any spelling ParseUpstream takes -> uids); it returns the
// previous table for a caller that must restore it.
func (t *peerTable) set(peers map[string][]uint32) map[string][]uint32 {
	m := make(map[string][]uint32, len(peers))
	for u, uids := range peers {
		a, err := ParseUpstream(u)
		if err != nil || a.Network != "unix" {
			continue
		}
		m[a.Address] = append(m[a.Address], uids...)
	}
	old := t.m.Swap(&m)
	if old == nil {
		return nil
	}
	return *old
}

// restore puts back a table set returned.
func (t *peerTable) restore(m map[string][]uint32) {
	m = maps.Clone(m)
	t.m.Store(&m)
}

// uids returns the uids allowed for path, nil if any uid is (the table
// does not list it).
func (t *peerTable) uids(path string) []uint32 {
	m := t.m.Load()
	if m == nil {
		return nil
	}
	return (*m)[path]
}

// unixDialer dials unix upstreams as dialUnix describes.
type unixDialer struct {
	dialer net.Dialer
	peers  *peerTable // nil: only hostctl's own pid is refused
	logger *zap.Logger
}

// dial connects to the unix socket at path (absolute), or returns why not.
// A refusal for the peer's sake is logged (at warn) with the path and the
// peer's pid and uid.
func (d *unixDialer) dial(ctx context.Context, path string) (net.Conn, error) {
	var want []uint32
	if d.peers != nil {
		want = d.peers.uids(filepath.Clean(path))
	}
	c, err := dialUnix(ctx, &d.dialer, path, want)
	var pe *PeerError
	if errors.As(err, &pe) && d.logger != nil {
		d.logger.Warn("unix upstream connection refused",
			zap.String("path", pe.Path), zap.Int32("peer_pid", pe.Pid), zap.Uint32("peer_uid", pe.UID),
			zap.Uint32s("want_uid", want), zap.String("why", pe.Why))
	}
	return c, err
}

// dialUnix connects to the unix stream socket at path without following a
// symlink in its last component, then checks its peer: never hostctl
// itself, and a uid among want unless want is empty. Errors are
// *net.OpError (the path cannot be opened or connected to) or *PeerError.
func dialUnix(ctx context.Context, d *net.Dialer, path string, want []uint32) (net.Conn, error) {
	// With O_PATH, O_NOFOLLOW opens a symlink itself (fstat then says so)
	// rather than failing with ELOOP.
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("open", err)}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("fstat", err)}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
	case unix.S_IFLNK:
		unix.Close(fd)
		return nil, &PeerError{Path: path, Why: "the path is a symbolic link (never followed)"}
	default:
		unix.Close(fd)
		return nil, &PeerError{Path: path, Why: "not a socket"}
	}
	// The O_PATH descriptor pins the inode just checked: connecting through
	// its /proc/self/fd link reaches that socket even if path is replaced
	// meanwhile (the link resolves to the inode, not to the name).
	nc, err := d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(fd))
	unix.Close(fd)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Addr = &net.UnixAddr{Name: path, Net: "unix"}
			return nil, oe
		}
		return nil, err
	}
	cred, err := peerCred(nc)
	if err != nil {
		nc.Close()
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: err}
	}
	switch {
	case int(cred.Pid) == os.Getpid():
		nc.Close()
		return nil, &PeerError{Path: path, Pid: cred.Pid, UID: cred.Uid, Why: "the peer is hostctl itself"}
	case len(want) > 0 && !slices.Contains(want, cred.Uid):
		nc.Close()
		return nil, &PeerError{Path: path, Pid: cred.Pid, UID: cred.Uid, Why: "the peer's uid is not that of the program serving it (" + uidList(want) + ")"}
	}
	return nc, nil
}

func uidList(uids []uint32) string {
	s := make([]string, len(uids))
	for i, u := range uids {
		s[i] = strconv.FormatUint(uint64(u), 10)
	}
	return "uid " + strings.Join(s, " or ")
}

// peerCred reads SO_PEERCRED of a unix connection.
func peerCred(nc net.Conn) (*unix.Ucred, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix connection: %T", nc)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, os.NewSyscallError("getsockopt SO_PEERCRED", cerr)
	}
	return cred, nil
}

func init() {
	caddy.RegisterModule(new(CheckedTransport))
}

// CheckedTransport is "http.reverse_proxy.transport.hostctl_http": Caddy's
// http transport, whose unix-socket connections are made by dialUnix
// (symlinks refused, the peer checked). TCP upstreams are dialed as the
// http transport does. Every reverse_proxy hostctl generates uses it.
type CheckedTransport struct {
	reverseproxy.HTTPTransport

	// Instance is the key of the Proxy whose upstream uids (its
	// Config.UpstreamPeers) the peer check reads.
	Instance string `json:"instance,omitempty"`

	unix *unixDialer
}

// CaddyModule returns the Caddy module information.
func (*CheckedTransport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.hostctl_http",
		New: func() caddy.Module { return new(CheckedTransport) },
	}
}

// Provision provisions the http transport, then replaces its dial for
// unix networks.
func (t *CheckedTransport) Provision(ctx caddy.Context) error {
	if t.ProxyProtocol != "" {
		return errors.New("hostctl_http: proxy_protocol is not supported")
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	t.unix = &unixDialer{
		dialer: net.Dialer{Timeout: time.Duration(t.DialTimeout)},
		peers:  lookupSink(t.Instance).peers,
		logger: ctx.Logger(),
	}
	dialTCP := t.Transport.DialContext
	t.Transport.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		if di, ok := reverseproxy.GetDialInfo(ctx); ok && strings.HasPrefix(di.Network, "unix") {
			if di.Network != "unix" {
				return nil, reverseproxy.NewDialError(fmt.Errorf("hostctl_http: network %q is not supported", di.Network))
			}
			c, err := t.unix.dial(ctx, di.Address)
			if err != nil {
				return nil, reverseproxy.NewDialError(err)
			}
			return c, nil
		}
		return dialTCP(ctx, network, address)
	}
	return nil
}

var _ caddy.Provisioner = (*CheckedTransport)(nil)
