package control

// TLS for the TCP admin listener: a certificate from files (read again
// when they change), or one signed by hostctl's own CA, which it makes
// once and keeps in the state dir so that clients can be given its
// certificate (ca.crt) as their CA file.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// LoopbackAddr reports whether the listen address addr ("host:port")
// accepts connections from this machine only: a loopback IP address or
// localhost. An empty host, 0.0.0.0, [::] and any other name are not.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && LoopbackHost(host)
}

// LoopbackHost reports whether host (an IP address or a name, as in a
// URL) is this machine's loopback: a loopback address, or localhost.
func LoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// Internal CA files inside AdminTLS.Dir.
const (
	CACertFile = "ca.crt"
	caKeyFile  = "ca.key"
)

// AdminTLS says how the TCP admin listener serves TLS: CertFile and
// KeyFile, or Internal.
type AdminTLS struct {
	// CertFile and KeyFile are a certificate (with its chain) and its
	// key, PEM. They are read again at the first handshake after either
	// changes (a renewal: replace both, key first); a pair that does not
	// load keeps the previous one in use, with a warning in the log.
	CertFile, KeyFile string
	// Internal makes the certificate itself, signed by hostctl's own CA:
	// an ECDSA P-256 key and certificate made once and kept in Dir
	// (ca.key, mode 0600; ca.crt, the file clients are given). The
	// listener's certificate is made at each start, in memory, for
	// Names, localhost, 127.0.0.1 and ::1, valid 90 days and made again
	// when less than 30 are left.
	Internal bool
	// Dir holds the internal CA; created with mode 0700 if missing. It
	// must belong to hostctl's user and be writable by no one else.
	Dir string
	// Names are the DNS names and IP addresses that the internal
	// certificate is for, besides localhost and loopback.
	Names []string
	// Logger gets certificate reloads and failures. Default: none.
	Logger *zap.Logger
}

// TLSInfo describes the listener's certificate for the log and the Host
// check.
type TLSInfo struct {
	// Names are the DNS names of the certificate (Options.Names).
	Names []string
	// CAFile is the internal CA's certificate, the file to give clients;
	// "" with CertFile.
	CAFile string
	// CAFingerprint is its SHA-256, as openssl x509 -fingerprint -sha256
	// prints it.
	CAFingerprint string
}

// Config returns the listener's tls.Config, for Options.TLS.
func (a AdminTLS) Config() (*tls.Config, TLSInfo, error) {
	if a.Logger == nil {
		a.Logger = zap.NewNop()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	var info TLSInfo
	switch {
	case a.Internal:
		ca, key, err := loadOrCreateCA(a.Dir)
		if err != nil {
			return nil, info, err
		}
		ic := &internalCert{ca: ca, caKey: key, names: a.Names}
		leaf, err := ic.issue(time.Now())
		if err != nil {
			return nil, info, err
		}
		ic.cert = leaf
		cfg.GetCertificate = ic.get
		sum := sha256.Sum256(ca.Raw)
		info = TLSInfo{Names: leaf.Leaf.DNSNames, CAFile: filepath.Join(a.Dir, CACertFile), CAFingerprint: fingerprint(sum[:])}
	case a.CertFile != "" && a.KeyFile != "":
		fc := &fileCert{certFile: a.CertFile, keyFile: a.KeyFile, log: a.Logger}
		if _, err := fc.get(nil); err != nil {
			return nil, info, err
		}
		cfg.GetCertificate = fc.get
		info.Names = fc.cert.Leaf.DNSNames
	default:
		return nil, info, errors.New("admin TLS: set cert_file and key_file, or tls = \"internal\"")
	}
	return cfg, info, nil
}

func fingerprint(b []byte) string {
	hex := make([]string, len(b))
	for i, c := range b {
		hex[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(hex, ":")
}

// CheckKeyPair reads a certificate and key file pair as the listener
// will, for config validation.
func CheckKeyPair(certFile, keyFile string) error {
	_, err := tls.LoadX509KeyPair(certFile, keyFile)
	return err
}

// --- certificate files ---

// fileCert serves CertFile and KeyFile, read again when they change.
type fileCert struct {
	certFile, keyFile string
	log               *zap.Logger

	mu    sync.Mutex // guards the fields below
	cert  *tls.Certificate
	stamp [2]fileStamp // of the files as last read
}

// fileStamp tells whether a file changed: another inode (a rename into
// place), size or modification time.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// get returns the certificate, reading the files again if they changed
// since the last read (two stats per handshake). Without a certificate
// yet, a failure is returned; later ones keep the one in use.
func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp := [2]fileStamp{stampOf(f.certFile), stampOf(f.keyFile)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert != nil && stamp == f.stamp {
		return f.cert, nil
	}
	f.stamp = stamp // a pair that fails is not read again until it changes
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		if f.cert == nil {
			return nil, fmt.Errorf("admin TLS certificate: %w", err)
		}
		f.log.Warn("admin TLS: the changed certificate files do not load; still serving the previous certificate", zap.String("cert_file", f.certFile), zap.String("key_file", f.keyFile), zap.Error(err))
		return f.cert, nil
	}
	if f.cert != nil {
		f.log.Info("admin TLS: certificate files changed; serving the new certificate", zap.String("cert_file", f.certFile), zap.Strings("names", c.Leaf.DNSNames), zap.Time("not_after", c.Leaf.NotAfter))
	}
	f.cert = &c
	return f.cert, nil
}

// --- the internal CA ---

// Validity of the internal CA and of the certificates it signs.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 90 * 24 * time.Hour
	leafRenew    = 30 * 24 * time.Hour // made again when less is left
)

// internalCert serves a certificate signed by the internal CA, made
// again when it nears its end.
type internalCert struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	names []string

	mu   sync.Mutex // guards cert
	cert *tls.Certificate
}

func (ic *internalCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	now := time.Now()
	if ic.cert.Leaf.NotAfter.Sub(now) < leafRenew {
		c, err := ic.issue(now)
		if err != nil {
			return nil, err
		}
		ic.cert = c
	}
	return ic.cert, nil
}

// issue makes a key and a certificate for the names, localhost and
// loopback, signed by the CA.
func (ic *internalCert) issue(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, n := range ic.names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.ContainsFunc(dns, func(d string) bool { return strings.EqualFold(d, n) }) {
			dns = append(dns, n)
		}
	}
	notAfter := now.Add(leafValidity)
	if notAfter.After(ic.ca.NotAfter) {
		notAfter = ic.ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "hostctl admin API"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ic.ca, &key.PublicKey, ic.caKey)
	if err != nil {
		return nil, fmt.Errorf("admin TLS: signing the listener's certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// loadOrCreateCA loads the CA kept in dir, making it (and dir) the first
// time. dir must be a directory of hostctl's user that no one else may
// write, the key a file of its user that no one else may read: anyone who
// could replace them could make clients trust their listener.
func loadOrCreateCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("admin TLS: %w", err)
	}
	if err := ownedPrivate(dir, 0o022); err != nil {
		return nil, nil, err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, caKeyFile)
	keyPEM, kerr := readNoFollow(keyPath, 0o077)
	certPEM, cerr := readNoFollow(certPath, 0o022)
	switch {
	case errors.Is(kerr, fs.ErrNotExist) && errors.Is(cerr, fs.ErrNotExist):
		return createCA(dir)
	case errors.Is(kerr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("admin TLS: %s has no %s beside it: restore it, or remove %s to make a new CA (and give clients the new one)", certPath, caKeyFile, certPath)
	case errors.Is(cerr, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("admin TLS: %s has no %s beside it: restore it, or remove %s to make a new CA (and give clients the new one)", keyPath, CACertFile, keyPath)
	case kerr != nil:
		return nil, nil, kerr
	case cerr != nil:
		return nil, nil, cerr
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("admin TLS: the CA in %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !pair.Leaf.IsCA {
		return nil, nil, fmt.Errorf("admin TLS: %s is not a CA certificate", certPath)
	}
	return pair.Leaf, key, nil
}

func createCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hostctl admin CA " + host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	// The key first: a crash between the two leaves a key without a
	// certificate, which the next start replaces, never a certificate
	// clients may already trust without its key.
	if err := writeNew(dir, caKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeNew(dir, CACertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// writeNew writes name in dir through a new temporary file (O_EXCL,
// mode 0600 until chmod) renamed into place.
func writeNew(dir, name string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("admin TLS: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("admin TLS: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("admin TLS: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("admin TLS: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("admin TLS: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("admin TLS: %w", err)
	}
	return nil
}

// ownedPrivate checks that path (not a link) belongs to this process's
// user and has none of the mode bits in forbidden.
func ownedPrivate(path string, forbidden os.FileMode) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("admin TLS: %w", err)
	}
	return checkOwned(path, fi, forbidden)
}

func checkOwned(path string, fi os.FileInfo, forbidden os.FileMode) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("admin TLS: %s is a symbolic link; hostctl keeps its CA in a directory of its own", path)
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("admin TLS: %s belongs to another user: it must be hostctl's own", path)
	case fi.Mode().Perm()&forbidden != 0:
		return fmt.Errorf("admin TLS: %s has mode %04o: no one but its owner may change it, or read a key (chmod go-rwx)", path, fi.Mode().Perm())
	}
	return nil
}

// readNoFollow reads a regular file without following a link at its
// name, after checking its owner and mode as ownedPrivate.
func readNoFollow(path string, forbidden os.FileMode) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("admin TLS: %s is a symbolic link; hostctl keeps its CA in a directory of its own", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("admin TLS: %s is not a regular file", path)
	}
	if err := checkOwned(path, fi, forbidden); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	return b, nil
}
