package consumer

import "errors"

// permanentError marks an error retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the same call cannot succeed
// (a batch the server rejects as malformed, a schema that does not match).
// Any stage may return one; the caller stops retrying (ingest dead-letters
// the batch, serve reports the setting to fix).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked
// Permanent. Everything else (timeouts, refused connections, a server
// restarting) is worth retrying.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
