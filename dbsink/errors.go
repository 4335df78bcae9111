package dbsink

import (
	"errors"
	"fmt"
)

var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("dbsink: invalid configuration")

	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("dbsink: closed")

	// ErrUnsafeDatabase is wrapped by the error Run returns at start when
	// the database cannot give the sink's guarantee (see CheckDatabase).
	ErrUnsafeDatabase = errors.New("dbsink: the database cannot fence zombie writes")
)

// MalformedError marks a record its Handler rejects for good: the sink
// dead-letters it instead of retrying. Create it with Malformed.
type MalformedError struct {
	Err error
}

func (e *MalformedError) Error() string { return "malformed record: " + e.Err.Error() }

func (e *MalformedError) Unwrap() error { return e.Err }

// Malformed wraps err to say the record can never be applied (it does not
// decode, it fails validation): the sink writes it to the dead-letter table
// in the batch's transaction and goes on. A nil err gives nil.
func Malformed(err error) error {
	if err == nil {
		return nil
	}
	return &MalformedError{Err: err}
}

// IsMalformed reports whether err is, or wraps, a *MalformedError.
func IsMalformed(err error) bool {
	_, ok := errors.AsType[*MalformedError](err)
	return ok
}

// ApplyError is a Handler's error for one record, other than Malformed: it
// rolled the batch's transaction back.
type ApplyError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("dbsink: applying %s/%d@%d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
