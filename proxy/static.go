package proxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(StaticFiles{})
}

// StaticFiles is the handler that serves a [[proxy.static]] mount
// (http.handlers.hostctl_static). It does what hostctl's generated config
// asked of Caddy's file_server: files under Root, no index files and no
// directory listings, precompressed siblings, conditional and range
// requests. It exists because Caddy's file_server imports the templates
// module (for its directory listings), which links a Markdown renderer and
// a syntax highlighter whose package init cost every hostctl process
// (including each CLI command) about 35 ms and 5 MB of binary.
type StaticFiles struct {
	// Root is the directory files are served from. The request path,
	// cleaned, is joined to it; symbolic links are followed (Django's
	// collectstatic --link makes them), with FileUser's permissions.
	Root string `json:"root"`
	// Precompressed lists the encodings ("br", "zstd", "gzip") whose
	// sibling files (app.js.br, app.js.zst, app.js.gz) are served as is to
	// clients that accept them, in order of preference. Empty: never.
	Precompressed []string `json:"precompressed,omitempty"`
	// FileUser is the user whose permissions files are opened with when
	// hostctl runs as root (see fileuser.go): a file, or a link, that
	// user may not read is refused with 403. Default "www-data" if that
	// user exists, else "nobody". Not root.
	FileUser string `json:"file_user,omitempty"`

	opener  *fileOpener
	release func()
}

// CaddyModule returns the Caddy module information.
func (StaticFiles) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_static",
		New: func() caddy.Module { return new(StaticFiles) },
	}
}

// precompressedSuffix is the file name suffix of each encoding's sibling.
var precompressedSuffix = map[string]string{"br": ".br", "zstd": ".zst", "gzip": ".gz"}

// Provision starts (or shares) the threads that open files as FileUser,
// and warns if that user cannot read Root: every file would get 403.
func (s *StaticFiles) Provision(ctx caddy.Context) error {
	o, release, err := acquireOpener(s.FileUser)
	if err != nil {
		return fmt.Errorf("file_user: %w", err)
	}
	s.opener, s.release = o, release
	var derr error
	o.do(context.Background(), func() {
		var fd int
		if fd, derr = syscall.Open(s.Root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); derr == nil {
			syscall.Close(fd)
		}
	})
	if errors.Is(derr, fs.ErrPermission) && ctx.Context != nil {
		ctx.Logger().Warn("the static dir is not readable by the file user: its files get 403 (give that user read and search permission on it and the dirs above)",
			zap.String("dir", s.Root), zap.String("file_user", fileUserName(o)))
	}
	return nil
}

// Cleanup releases the opener threads.
func (s *StaticFiles) Cleanup() error {
	if s.release != nil {
		s.release()
	}
	return nil
}

// Validate checks the encodings.
func (s *StaticFiles) Validate() error {
	if s.Root == "" {
		return errors.New("root is required")
	}
	for _, e := range s.Precompressed {
		if precompressedSuffix[e] == "" {
			return errors.New("precompressed: unknown encoding " + strconv.Quote(e) + " (br, zstd, gzip)")
		}
	}
	return nil
}

// ServeHTTP serves the file named by the request path, or a 404 error (405
// for methods other than GET and HEAD) for Caddy's error routes.
func (s *StaticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	name := caddyhttp.SanitizedPathJoin(s.Root, r.URL.Path)
	h := w.Header()
	var encs []string
	if len(s.Precompressed) > 0 {
		// The response depends on Accept-Encoding even when it is not
		// compressed: caches must not give the plain file to a client that
		// accepts gzip, or the reverse.
		h.Add("Vary", "Accept-Encoding")
		encs = encode.AcceptedEncodings(r, s.Precompressed)
	}
	f, cf, enc, err := s.open(r.Context(), name, encs)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return caddyhttp.Error(http.StatusForbidden, err)
		}
		return caddyhttp.Error(http.StatusNotFound, err)
	}
	defer f.Close()
	if cf != nil {
		defer cf.Close()
		f = cf
		h.Set("Content-Encoding", enc)
		if h.Get("Content-Type") == "" {
			// The type is the original file's, never sniffed from
			// compressed bytes.
			ct := mime.TypeByExtension(filepath.Ext(name))
			if ct == "" {
				ct = "application/octet-stream"
			}
			h.Set("Content-Type", ct)
		}
	}
	info, err := f.Stat()
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if etag := fileETag(info); etag != "" {
		h.Set("ETag", etag)
	}
	http.ServeContent(w, r, info.Name(), info.ModTime(), f)
	return nil
}

// open opens name and, if it is there, the sibling of the first of encs
// that exists (nil if none does), in one trip to the file user's threads.
func (s *StaticFiles) open(ctx context.Context, name string, encs []string) (f, sibling *os.File, enc string, err error) {
	derr := s.opener.do(ctx, func() {
		if f, err = openRegular(name); err != nil {
			return
		}
		for _, e := range encs {
			if cf, cerr := openRegular(name + precompressedSuffix[e]); cerr == nil {
				sibling, enc = cf, e
				return
			}
		}
	})
	if derr != nil {
		return nil, nil, "", derr
	}
	return f, sibling, enc, err
}

// fileETag is a strong ETag from the file's modification time and size,
// the same as Caddy's file_server makes (so upgrading hostctl does not
// invalidate every client's cache): "" when the time is unknown.
func fileETag(info fs.FileInfo) string {
	mt := info.ModTime()
	if mt.IsZero() || mt.Unix() == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('"')
	b.WriteString(strconv.FormatInt(mt.UnixNano(), 36))
	b.WriteByte('-')
	b.WriteString(strconv.FormatInt(info.Size(), 36))
	b.WriteByte('"')
	return b.String()
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*StaticFiles)(nil)
	_ caddy.CleanerUpper          = (*StaticFiles)(nil)
	_ caddy.Validator             = (*StaticFiles)(nil)
	_ caddyhttp.MiddlewareHandler = (*StaticFiles)(nil)
)
