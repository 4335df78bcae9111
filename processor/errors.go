package processor

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/exactly-stream/exactly/topology"
)

var (
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("processor: closed")

	// ErrConfig is wrapped by every configuration error returned by New or
	// Run: the message names the setting at fault.
	ErrConfig = errors.New("processor: invalid configuration")

	// ErrStateAhead is wrapped when local or changelog state reflects input
	// the consumer group has not committed: an operator moved the group's
	// offsets backwards (or they expired). Processing would apply inputs
	// twice. Reset the state (wipe the changelogs and state directory) or
	// restore the group's offsets.
	ErrStateAhead = errors.New("processor: state is ahead of the group's committed offsets")

	// ErrLocalState is wrapped when the local state store fails (disk
	// full, corruption): the instance stops; a restart restores.
	ErrLocalState = errors.New("processor: local state failure")

	// ErrTxnAborted is the cause of a transaction that ended in an abort
	// though nothing failed on this side and no rebalance happened: the
	// broker or the coordinator aborted it (an abortable error).
	ErrTxnAborted = errors.New("processor: transaction aborted by the cluster")

	// ErrFenced is wrapped when another live instance uses this instance's
	// transactional ID (the same group and instance ID: an operator
	// mistake, or a replacement started before the old process died). The
	// instance stops instead of fencing its twin back.
	//
	// A fencing error alone does not mean a twin: a transaction the broker
	// aborted for its timeout (a GC or VM pause, a frozen process, a slow
	// broker) bumps the producer epoch too, and a new session works. The
	// processor stops with ErrFenced only when the group has another
	// member with this transactional ID as its client ID.
	//
	// Nor does one FENCED_INSTANCE_ID from the group (another member
	// joined with this group.instance.id): the group can apply a member's
	// own JoinGroup twice across a coordinator failover. The instance
	// rejoins, and stops with ErrFenced (wrapping kerr.FencedInstanceID)
	// when fenced so again within a minute.
	ErrFenced = errors.New("processor: fenced by another instance with the same instance ID")

	// ErrRestoreIncomplete is wrapped when the restore of a changelog
	// partition made no progress for the restore timeout.
	ErrRestoreIncomplete = errors.New("processor: restore incomplete")
)

// isFenced reports whether err says this producer's epoch is no longer
// current: another producer initialized its transactional ID, or the broker
// aborted its transaction for its timeout.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

// BadRecordError stops an instance whose error policy is Fail: it names
// the bad record and why it failed. The transaction was aborted; the
// record's offset did not commit.
type BadRecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *BadRecordError) Error() string {
	return fmt.Sprintf("bad record at %s partition %d offset %d (error policy fail): %s", e.Topic, e.Partition, e.Offset, e.Err.Error())
}

func (e *BadRecordError) Unwrap() error { return e.Err }

// AbortLimitError stops an instance whose transactions aborted too many
// times in a row for the same cause.
type AbortLimitError struct {
	Aborts int
	Err    error // the cause of the last abort
}

func (e *AbortLimitError) Error() string {
	return fmt.Sprintf("%d consecutive transactions aborted: %s", e.Aborts, e.Err.Error())
}

func (e *AbortLimitError) Unwrap() error { return e.Err }

// RestoreError names the store partition whose restore failed.
type RestoreError struct {
	Store     string
	Partition int32
	Err       error
}

func (e *RestoreError) Error() string {
	return fmt.Sprintf("restoring store %q partition %d: %s", e.Store, e.Partition, e.Err.Error())
}

func (e *RestoreError) Unwrap() error { return e.Err }

// IsFatal reports whether err from a transaction means this instance must
// stop: it was fenced by another instance with the same instance ID
// (ErrFenced), it is not authorized, its state cannot be trusted, or a
// node's code used a store or child it did not declare (a
// *topology.UsageError: a programming error no retry or dead letter mends). Other
// errors from ending a transaction, fencing errors among them (see
// ErrFenced), are handled by recreating the session.
//
// FENCED_INSTANCE_ID (kerr.FencedInstanceID) is fatal for the session,
// which must end; Run rejoins once nonetheless and returns it, wrapped with
// ErrFenced, only when the group fences the instance again within a
// minute.
func IsFatal(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrFenced),
		errors.Is(err, kerr.FencedInstanceID), // replaced in the group: see rejoinFencedInstance
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.InvalidTransactionTimeout),
		errors.Is(err, ErrStateAhead),
		errors.Is(err, ErrRestoreIncomplete),
		errors.Is(err, ErrConfig),
		errors.Is(err, ErrLocalState):
		return true
	}
	var (
		re *RestoreError
		rt *topology.RuntimeError
		ue *topology.UsageError
		br *BadRecordError
		al *AbortLimitError
	)
	return errors.As(err, &re) || errors.As(err, &rt) || errors.As(err, &ue) || errors.As(err, &br) || errors.As(err, &al)
}
