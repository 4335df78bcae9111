package processor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrorPolicy says what happens to a bad record: one that fails to decode,
// whose processing returns an error, or whose output the broker refuses for
// good (too large, invalid). Whatever the policy, the record's neighbours
// are processed as usual and a bad record never blocks its partition.
type ErrorPolicy int8

const (
	// DeadLetter produces the record, with headers naming its source and
	// the error, to the dead-letter topic inside the same transaction; its
	// offset commits with the rest. This is the default.
	DeadLetter ErrorPolicy = iota
	// Fail aborts the transaction cleanly and stops the instance with a
	// *BadRecordError naming the record's coordinates and the cause.
	Fail
	// Skip drops the record: it is counted (Stats.Skipped) and logged at
	// warn level with its coordinates and cause, never silently.
	Skip
)

var policyNames = [...]string{DeadLetter: "dead-letter", Fail: "fail", Skip: "skip"}

func (p ErrorPolicy) String() string {
	if int(p) < len(policyNames) && p >= 0 {
		return policyNames[p]
	}
	return fmt.Sprintf("ErrorPolicy(%d)", int8(p))
}

// ParseErrorPolicy parses "dead-letter", "fail" or "skip".
func ParseErrorPolicy(s string) (ErrorPolicy, error) {
	for p, name := range policyNames {
		if name == s {
			return ErrorPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("unknown error policy %q: want dead-letter, fail or skip", s)
}

// OnBadRecord sets the error policy of every source. The default value is
// DeadLetter.
func OnBadRecord(p ErrorPolicy) Opt { return opt(func(c *cfg) { c.policy = p }) }

// OnBadRecordFrom sets the error policy of the source reading topic,
// overriding OnBadRecord.
func OnBadRecordFrom(topic string, p ErrorPolicy) Opt {
	return opt(func(c *cfg) {
		if c.sourcePolicy == nil {
			c.sourcePolicy = make(map[string]ErrorPolicy)
		}
		c.sourcePolicy[topic] = p
	})
}

func (c *cfg) policyOf(topic string) ErrorPolicy {
	if p, ok := c.sourcePolicy[topic]; ok {
		return p
	}
	return c.policy
}

// isRecordRefused reports whether a produce error means the broker (or the
// client, before sending) will never accept this record, so retrying the
// transaction would fail the same way forever.
func isRecordRefused(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) ||
		errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) ||
		errors.Is(err, kerr.CorruptMessage) ||
		errors.Is(err, kerr.InvalidTimestamp)
}

// inputRef names an input record.
type inputRef struct {
	topic  string
	part   int32
	offset int64
}

// refused remembers input records whose outputs the broker refused for
// good. The transaction that produced them aborts; when the session
// rewinds and the record comes again, it is handled as a bad record
// instead of being processed (and refused) again. Promises write it from
// kgo's goroutines.
type refused struct {
	mu sync.Mutex
	m  map[inputRef]error
}

func (r *refused) add(in inputRef, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[inputRef]error)
	}
	r.m[in] = err
}

// take returns and forgets the refusal of in.
func (r *refused) take(in inputRef) (error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err, ok := r.m[in]
	delete(r.m, in)
	return err, ok
}

// outputPromise returns the promise of an output of input record in: a
// refused output marks in as bad for the retry.
func (t *txn) outputPromise(in inputRef) func(*kgo.Record, error) {
	t.errs.add()
	return func(r *kgo.Record, err error) {
		if err != nil && isRecordRefused(err) {
			t.p.refused.add(in, fmt.Errorf("output to %s refused: %w", r.Topic, err))
		}
		t.errs.done(r, err)
	}
}
