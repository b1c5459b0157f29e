package trust

import (
	"errors"
	"fmt"
	"strings"
)

// Reader reads a file hostctl trusts. ReadFile (without its warning) is
// one; the config reader passes one that reads each file once, so that a
// secret is read at one moment and every section provisioned from it.
type Reader func(path string, kind Kind) ([]byte, error)

// Read is ReadFile as a Reader: the warning is dropped (whoever reads
// through it reports warnings on its own).
func Read(path string, kind Kind) ([]byte, error) {
	b, _, err := ReadFile(path, kind)
	return b, err
}

// ReadSecret reads the secret file path (a token, a password, a routing
// key) through read and returns its contents without the white space
// around them (a token written with echo ends in a newline). Its errors
// read as a config message after the key: `refused: ...` for a file
// hostctl does not trust (an *Error inside), `cannot read "/p": no such
// file or directory` (the file system's error inside), `"/p" is empty`.
func ReadSecret(read Reader, path string) (string, error) {
	b, err := read(path, Secret)
	if err != nil {
		return "", Describe(path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// Describe turns an error of reading path (ReadFile, a Reader) into the
// words of a config message after the key: "refused: ..." (an *Error
// inside) or a *ReadError.
func Describe(path string, err error) error {
	if te, ok := errors.AsType[*Error](err); ok {
		return fmt.Errorf("refused: %w", te)
	}
	return &ReadError{Path: path, Err: unwrap(err)}
}

// ReadError is a file that could not be read (it is missing, or hostctl
// may not read it): a problem with this machine more than with a config.
type ReadError struct {
	Path string
	Err  error // the cause, without the path: "no such file or directory"
}

func (e *ReadError) Error() string { return fmt.Sprintf("cannot read %q: %v", e.Path, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }
