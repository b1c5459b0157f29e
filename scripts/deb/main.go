// Command deb builds hostctl's Debian package (`make deb`) with
// goreleaser's nfpm: hostctl_VERSION_amd64.deb holding the binary, the
// systemd unit, /etc/hostctl/hostctl.toml (configs/server.toml, a
// conffile), bash and zsh completions generated from the binary, the
// copyright file, and the maintainer scripts beside this file (postinst,
// prerm, postrm).
//
//	go run . -root ../.. -bin ../../bin/deb/hostctl -version "$(git describe --always --dirty)" -out ../../bin
//
// It lives in a module of its own so that nfpm and what it needs (rpm,
// apk, arch and git libraries) are not dependencies of hostctl itself.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", ".", "the repository's root (configs/, LICENSE)")
	bin := flag.String("bin", "bin/deb/hostctl", "the hostctl binary to package (linux/amd64, static: CGO_ENABLED=0)")
	version := flag.String("version", "", "hostctl's version, as `git describe --always --dirty` says it (v1.2.3, v1.2.3-4-gabcdef0, abcdef0, abcdef0-dirty)")
	out := flag.String("out", "bin", "the dir to write hostctl_VERSION_amd64.deb to")
	flag.Parse()
	if *version == "" {
		return errors.New("-version is required")
	}
	when, err := commitTime(*root)
	if err != nil {
		return err
	}
	debVersion, err := DebianVersion(*version, when)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hostctl-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Generated: completions from the binary itself (cobra), and the unit
	// with the package's path of the binary.
	gen := map[string][]byte{}
	for _, shell := range []string{"bash", "zsh"} {
		if gen[shell], err = exec.Command(*bin, "completion", shell).Output(); err != nil {
			return fmt.Errorf("%s completion %s: %w", *bin, shell, err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(*root, "configs", "hostctl.service"))
	if err != nil {
		return err
	}
	if gen["unit"], err = packagedUnit(unit); err != nil {
		return err
	}
	for name, b := range gen {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return err
		}
	}

	here := filepath.Join(*root, "scripts", "deb")
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode, Owner: "root", Group: "root"}}
	}
	contents := files.Contents{
		file(*bin, "/usr/bin/hostctl", 0o755),
		file(filepath.Join(tmp, "unit"), "/usr/lib/systemd/system/hostctl.service", 0o644),
		file(filepath.Join(tmp, "bash"), "/usr/share/bash-completion/completions/hostctl", 0o644),
		file(filepath.Join(tmp, "zsh"), "/usr/share/zsh/vendor-completions/_hostctl", 0o644),
		file(filepath.Join(*root, "LICENSE"), "/usr/share/doc/hostctl/copyright", 0o644),
		// Root's, readable by root only: it may come to name secrets.
		{Destination: "/etc/hostctl", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750, Owner: "root", Group: "root"}},
		// A conffile: dpkg keeps the administrator's edits on upgrades.
		{Source: filepath.Join(*root, "configs", "server.toml"), Destination: "/etc/hostctl/hostctl.toml", Type: files.TypeConfigNoReplace,
			FileInfo: &files.ContentFileInfo{Mode: 0o640, Owner: "root", Group: "root"}},
	}
	info := &nfpm.Info{
		Name:          "hostctl",
		Arch:          "amd64",
		Platform:      "linux",
		Version:       debVersion,
		VersionSchema: "none", // a Debian version already (DebianVersion)
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "The hostctl authors <https://github.com/hostctl/hostctl>",
		Homepage:      "https://github.com/hostctl/hostctl",
		License:       "MIT",
		Description: "supervises a Python web app's programs and serves its site\n" +
			"One binary that replaces supervisord and nginx: it starts gunicorn,\n" +
			"celery, memcached or any program in dependency order with readiness\n" +
			"probes, restarts them with backoff, rotates their logs, and serves the\n" +
			"site through an embedded Caddy (reverse proxy, static files, automatic\n" +
			"HTTPS), with a CLI, a dashboard and supervisord's XML-RPC API.",
		MTime: when,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Umask:    0o022,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(here, "postinst"),
				PreRemove:   filepath.Join(here, "prerm"),
				PostRemove:  filepath.Join(here, "postrm"),
			},
			Deb: nfpm.Deb{Fields: map[string]string{"Rules-Requires-Root": "no"}},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	target := filepath.Join(*out, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	if err := os.WriteFile(target, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println(target)
	return nil
}

// packagedUnit is configs/hostctl.service with the package's binary,
// /usr/bin/hostctl, for scripts/install.sh's /usr/local/bin/hostctl.
func packagedUnit(unit []byte) ([]byte, error) {
	const from, to = "/usr/local/bin/hostctl", "/usr/bin/hostctl"
	if !bytes.Contains(unit, []byte("ExecStart="+from+" ")) {
		return nil, fmt.Errorf("configs/hostctl.service: no ExecStart=%s to point at %s", from, to)
	}
	return bytes.ReplaceAll(unit, []byte(from), []byte(to)), nil
}

// commitTime is when HEAD was committed: the files' time in the package
// (the same sources make the same package) and the date in a version
// without a tag.
func commitTime(root string) (time.Time, error) {
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("git log (the time of the commit): %w", err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git log: %q is not a time", out)
	}
	return time.Unix(sec, 0).UTC(), nil
}

var (
	tagged   = regexp.MustCompile(`^v?([0-9]+\.[0-9A-Za-z.+~]*)(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	untagged = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
)

// DebianVersion turns `git describe --always --dirty` into a Debian
// version that sorts the way the commits were made:
//
//	v1.2.3                   1.2.3
//	v1.2.3-4-gabcdef0        1.2.3+git4.abcdef0 (4 commits after v1.2.3)
//	abcdef0 (no tag yet)     0~gitYYYYMMDDhhmmss.abcdef0 (the commit's time)
//	...-dirty                ...+dirty (built from uncommitted changes)
func DebianVersion(describe string, commit time.Time) (string, error) {
	if m := tagged.FindStringSubmatch(describe); m != nil {
		v := m[1]
		if m[2] != "" {
			v += "+git" + m[2] + "." + m[3]
		}
		if m[4] != "" {
			v += "+dirty"
		}
		return v, nil
	}
	if m := untagged.FindStringSubmatch(describe); m != nil {
		v := "0~git" + commit.UTC().Format("20060102150405") + "." + m[1]
		if m[2] != "" {
			v += "+dirty"
		}
		return v, nil
	}
	return "", fmt.Errorf("-version %q: not what git describe --always --dirty says (v1.2.3, v1.2.3-4-gabcdef0, abcdef0)", describe)
}
