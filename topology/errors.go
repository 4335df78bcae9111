package topology

import (
	"errors"
	"fmt"
)

// ErrUndeclared is wrapped by errors from a node touching a store or sending
// to a node it did not declare.
var ErrUndeclared = errors.New("topology: undeclared access")

// ErrNoSource is returned by Process for a record whose topic no source reads.
var ErrNoSource = errors.New("topology: no source for topic")

// BuildError is returned by Build; it names the node (or store) at fault.
type BuildError struct {
	Node   string // node or store name
	Reason string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("topology: node %q: %s", e.Node, e.Reason)
}

// DecodeError means a source could not decode an input record. The record is
// bad input: it belongs in a dead-letter topic.
type DecodeError struct {
	Node  string
	Topic string
	Part  string // "key" or "value"
	Err   error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding %s at source %q (topic %s): %s", e.Part, e.Node, e.Topic, e.Err.Error())
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ProcessError means a processor (or a serde it used) failed on one record.
// The record is bad input for this topology: it belongs in a dead-letter
// topic. The effects of the failed record must be discarded by the runtime.
type ProcessError struct {
	Node string
	Err  error
}

func (e *ProcessError) Error() string {
	return fmt.Sprintf("processing at node %q: %s", e.Node, e.Err.Error())
}

func (e *ProcessError) Unwrap() error { return e.Err }

// RuntimeError means the Runtime itself failed (state storage, producing).
// It is not the record's fault: the transaction must abort and the record
// be processed again.
type RuntimeError struct {
	Err error
}

func (e *RuntimeError) Error() string { return fmt.Sprintf("topology runtime: %s", e.Err.Error()) }

func (e *RuntimeError) Unwrap() error { return e.Err }

// IsBadRecord reports whether err says the record itself is bad (decode or
// processing failure), as opposed to a failure of the runtime.
func IsBadRecord(err error) bool {
	var d *DecodeError
	var p *ProcessError
	var r *RuntimeError
	if errors.As(err, &r) {
		return false
	}
	return errors.As(err, &d) || errors.As(err, &p)
}
