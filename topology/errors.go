package topology

import (
	"errors"
	"fmt"
)

// ErrUndeclared is wrapped by a *UsageError: a node touched a store or sent
// to a node it did not declare.
var ErrUndeclared = errors.New("topology: undeclared access")

// ErrNoSource is returned by Dispatch for a record whose topic no source reads.
var ErrNoSource = errors.New("topology: no source for topic")

// ErrNoPunctuator is returned by Punctuate for a name no punctuator has.
var ErrNoPunctuator = errors.New("topology: no punctuator")

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

// UsageError means a node's code used the topology wrongly: it read or wrote
// a store it did not declare with Stores, or sent to a node that does not
// list it as a parent. It is a programming error, not a bad record: every
// record would fail the same way, so the runtime must stop instead of
// dead-lettering the input. Build checks everything it can see statically
// (unknown and unused stores, unknown parents); the code inside a processor
// function is a closure Build cannot inspect, so this is caught on the first
// record that takes the faulty path. Dispatch returns a *UsageError even if
// the processor swallowed the error its Get, Put, Delete or Send returned.
type UsageError struct {
	Node  string // the node whose code is at fault
	Store string // the undeclared store, if a store was used
	Child string // the node sent to, if a send was refused
	// ReadOnly: the node wrote to a global store, which only its topic
	// writes (GlobalStore).
	ReadOnly bool
}

func (e *UsageError) Error() string {
	if e.ReadOnly {
		return fmt.Sprintf("topology: node %q writes global store %q, which is read-only: write its topic instead", e.Node, e.Store)
	}
	if e.Store != "" {
		return fmt.Sprintf("topology: node %q uses store %q without declaring it with Stores", e.Node, e.Store)
	}
	return fmt.Sprintf("topology: node %q sends to %q, which does not list it as a parent", e.Node, e.Child)
}

// Unwrap returns ErrUndeclared.
func (e *UsageError) Unwrap() error { return ErrUndeclared }

// IsBadRecord reports whether err says the record itself is bad (decode or
// processing failure), as opposed to a failure of the runtime or a
// programming error (*UsageError).
func IsBadRecord(err error) bool {
	var d *DecodeError
	var p *ProcessError
	var r *RuntimeError
	var u *UsageError
	if errors.As(err, &r) || errors.As(err, &u) {
		return false
	}
	return errors.As(err, &d) || errors.As(err, &p)
}
