package outbox

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("outbox: invalid configuration")

	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("outbox: closed")

	// ErrFenced is wrapped by the error Run returns when another relay
	// of the same name took over: this one publishes nothing more.
	ErrFenced = errors.New("outbox: fenced by another relay with the same name")
)

// RowError is returned by Run when an outbox row cannot be published: its
// topic does not exist or its headers are not valid. The rows before it
// were published; it and the rows after it stay in the table, and the
// relay stops until an operator fixes the row (or creates the topic) and
// restarts it. Nothing is skipped silently.
type RowError struct {
	ID    int64
	Topic string
	Err   error
}

func (e *RowError) Error() string {
	return fmt.Sprintf("outbox: row %d (topic %q) cannot be published: %v", e.ID, e.Topic, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// errUnknownTopic is a RowError's cause when the row's topic is missing.
var errUnknownTopic = errors.New("the topic does not exist")

// IsFatal reports whether err stops a relay for good: a configuration
// error, a fence or a malformed row. Other errors are retried by Run.
func IsFatal(err error) bool {
	var re *RowError
	return errors.Is(err, ErrConfig) || errors.Is(err, ErrFenced) || errors.As(err, &re)
}

// isFenced reports an error that means another producer took this
// transactional ID: retrying cannot help.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
