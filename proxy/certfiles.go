package proxy

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Sites with cert_file and key_file serve certificates from files that
// something else renews in place (certbot renew rewrites the files behind
// /etc/letsencrypt/live/NAME/ and re-points the symlinks). The Caddy
// config loads them by path and carries a checksum of their contents
// (readFileCert), so the proxy reloads exactly when the contents change.
// A goroutine notices a change from the files' size, modification time
// and inode (through symlinks) every certCheckInterval and re-applies the
// running config.

// certCheckInterval is how often the certificate files are looked at.
// Tests shorten it.
var certCheckInterval = 10 * time.Second

// certFiles returns the cert_file and key_file paths of every site.
func (c *Config) certFiles() []string {
	var out []string
	for _, s := range c.sites("proxy") {
		if s.tlsMode() == tlsFiles {
			out = append(out, s.CertFile, s.KeyFile)
		}
	}
	return out
}

// stampFiles describes files by what changes when they are replaced or
// rewritten; a missing file is part of the description too.
func stampFiles(files []string) string {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", f)
			continue
		}
		ino := uint64(0)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		fmt.Fprintf(&b, "%s:%d:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return b.String()
}

// watchCertFiles records cfg as the running config and starts or stops
// the check of its certificate files. p.mu is held.
func (p *Proxy) watchCertFiles(cfg Config) {
	p.cfg = cfg
	files := cfg.certFiles()
	if len(files) == 0 {
		p.stopCertWatch()
		return
	}
	p.certStamp = stampFiles(files)
	if p.certStop == nil {
		p.certStop = make(chan struct{})
		go p.certLoop(p.certStop)
	}
}

// stopCertWatch ends the check. p.mu is held.
func (p *Proxy) stopCertWatch() {
	if p.certStop != nil {
		close(p.certStop)
		p.certStop = nil
	}
}

func (p *Proxy) certLoop(stop chan struct{}) {
	t := time.NewTicker(certCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.checkCertFiles()
		}
	}
}

// checkCertFiles re-applies the running config when its certificate
// files changed. A pair that does not load is logged, once per change,
// and the previous certificate keeps serving.
func (p *Proxy) checkCertFiles() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	files := p.cfg.certFiles()
	stamp := stampFiles(files)
	if stamp == p.certStamp {
		return
	}
	p.certStamp = stamp
	before := p.lastJSON
	if err := p.apply(p.cfg); err != nil {
		p.opts.Logger.Error("proxy: certificate files changed but do not load; the previous certificate keeps serving",
			zap.Strings("files", files), zap.Error(err))
		return
	}
	if string(before) != string(p.lastJSON) {
		p.opts.Logger.Info("proxy: certificate files changed; reloaded", zap.Strings("files", files))
	}
}

// fileCertificates describes the certificates of cert_file sites, for
// Status (and the tls_expiring alert).
func (p *Proxy) fileCertificates() []CertificateStatus {
	var out []CertificateStatus
	for _, s := range p.cfg.sites("proxy") {
		if s.tlsMode() != tlsFiles {
			continue
		}
		pair, err := loadKeyPair(s.CertFile, s.KeyFile)
		if err != nil || len(pair.Certificate) == 0 {
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			continue
		}
		out = append(out, CertificateStatus{Names: leaf.DNSNames, Issuer: "file " + s.CertFile, NotAfter: leaf.NotAfter})
	}
	return out
}
