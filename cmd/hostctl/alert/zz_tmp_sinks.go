package alert

import "errors"

func newSink(c SinkConfig) (Sink, error) { return nil, errors.New("tmp") }

type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }
func IsPermanent(err error) bool { var p permanentError; return errors.As(err, &p) }
