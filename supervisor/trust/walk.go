package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// One walk of a path, one rule for what may stand on it. Walk resolves a
// path as the kernel would, one component at a time, symbolic links
// followed, and shows every component to a Visit that decides whether it
// is trusted. walk (below) is hostctl's rule for the files it reads and
// the dirs it keeps state in; supervisor/logfile's CheckDir visits the
// same steps with the rule for log dirs (the same owners and write bits,
// plus a system group that may write above a log dir, and a missing tail
// that hostctl creates).

// Step is one component Walk passes.
type Step struct {
	// Path is the component's physical path (links above it resolved).
	Path string
	// Info is its Lstat: a symbolic link is seen as one, before Walk
	// follows it.
	Info fs.FileInfo
	// Final is set on the last component of the walk (after the links
	// followed so far): the file or dir asked for, or a link to it.
	Final bool
	// Shared is set when the parent is a sticky dir that group or others
	// can write (/tmp): anyone could have made this entry.
	Shared bool
	// Links is how many symbolic links were followed before this step.
	Links int
}

// Visit checks one step; an error stops the walk and is Walk's error.
type Visit func(s Step) error

// MaxLinks bounds the symbolic links Walk follows, as the kernel does
// (ELOOP past 40).
const MaxLinks = 40

// Walk resolves path (relative to the working directory unless absolute)
// and calls visit with "/" and then every component on the way, links
// included, in order. It returns the physical path of the final
// component, which is not a symbolic link. A component that does not
// exist ends the walk: with missingOK, Walk returns "" and nil (what is
// missing will be created, and checked then); else an error that is
// fs.ErrNotExist. A component that is not a directory where one is needed
// is an error that is syscall.ENOTDIR, once visit has seen it.
func Walk(path string, missingOK bool, visit Visit) (string, error) {
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		path = filepath.Join(wd, path)
	}
	todo := strings.Split(path, "/")
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", err
	}
	if err := visit(Step{Path: cur, Info: fi, Final: allEmpty(todo)}); err != nil {
		return "", err
	}
	shared := sharedSticky(fi) // cur is a sticky dir others can write
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			// cur is physical and was visited on the way down, as were
			// all its parents.
			cur = filepath.Dir(cur)
			fi, err := os.Lstat(cur)
			if err != nil {
				return "", err
			}
			shared = sharedSticky(fi)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			if missingOK && errors.Is(err, fs.ErrNotExist) {
				return "", nil
			}
			return "", &fs.PathError{Op: "lstat", Path: path, Err: unwrap(err)}
		}
		final := allEmpty(todo)
		if err := visit(Step{Path: next, Info: fi, Final: final, Shared: shared, Links: links}); err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > MaxLinks {
				return "", &fs.PathError{Op: "open", Path: path, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if filepath.IsAbs(target) {
				cur = "/"
				root, err := os.Lstat(cur)
				if err != nil {
					return "", err
				}
				shared = sharedSticky(root)
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if final {
			return next, nil
		}
		if !fi.IsDir() {
			return "", &fs.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
		}
		cur = next
		shared = sharedSticky(fi)
	}
	return cur, nil
}

// walk is Walk with hostctl's rule for the files it trusts (ReadFile,
// PrivateDir): every directory on the way owned by root or hostctl's user
// and writable by no one else unless sticky, and in a sticky dir others
// can write, only an entry (a link included) of root's or ours. The final
// component is the caller's to check.
func walk(path string) (string, error) {
	return Walk(path, false, func(s Step) error {
		if s.Shared {
			// In /tmp anyone may create the name first: only an entry of
			// ours (or root's) can be believed, a link included.
			if err := checkOwner(s.Path, s.Info, ownerRootOrSelf, path); err != nil {
				return err
			}
		}
		if s.Info.Mode()&fs.ModeSymlink != 0 || (s.Final && s.Path != "/") {
			return nil
		}
		if !s.Info.IsDir() {
			return nil // Walk says ENOTDIR
		}
		return checkDir(s.Path, s.Info, path)
	})
}

// allEmpty reports whether only "" and "." are left (a trailing slash).
func allEmpty(todo []string) bool {
	for _, c := range todo {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}
