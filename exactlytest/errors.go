package exactlytest

import (
	"errors"
	"fmt"
)

// ErrIdle is wrapped by an IncompleteError when reading saw no record for
// ReadOptions.IdleTimeout.
var ErrIdle = errors.New("exactlytest: no progress")

// IncompleteError is returned when reading stopped before every partition
// reached its end offset: the timeout passed, the context ended or reading
// was idle. Err is ErrIdle or the context's error.
type IncompleteError struct {
	// Topic is the topic being read.
	Topic string
	// Partitions are the partitions not read to their end, in order.
	Partitions []int32
	// Err is why reading stopped.
	Err error
}

// Error names the topic, the partitions left and why reading stopped.
func (e *IncompleteError) Error() string {
	return fmt.Sprintf("exactlytest: reading %s: partitions %v not read to their end: %s", e.Topic, e.Partitions, e.Err.Error())
}

// Unwrap returns Err.
func (e *IncompleteError) Unwrap() error { return e.Err }
