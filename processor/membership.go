package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Static membership and the exactly-once bookkeeping (see StaticMembership):
//
//   - A restarted static member gets its old assignment back in the
//     JoinGroup answer; the group does not rebalance, so the other members'
//     callbacks do not fire and their open transactions go on. The
//     restarted process has a fresh client, whose assign callback names
//     every partition: each is restored from its local checkpoint before
//     its first record, as after any start.
//   - Its first transaction initializes the same transactional ID, which
//     bumps the producer epoch: the previous incarnation's open transaction
//     is aborted, and that incarnation, should it still run, can neither
//     produce nor commit. Its group member was replaced, so its heartbeats,
//     fetches and offset commits get FENCED_INSTANCE_ID.
//   - A member told FENCED_INSTANCE_ID recreates its session once: the new
//     client rejoins under the same instance ID, which replaces the other
//     holder in turn (rejoinFencedInstance). The group can fence a member
//     with no other process about: a JoinGroup applied twice across a
//     coordinator failover (a lost answer, a retry) leaves the group with a
//     member ID for the instance that is not the client's. A second
//     FENCED_INSTANCE_ID within fencedInstanceWindow means a live twin
//     that rejoins as well, and the instance stops with ErrFenced
//     (fencedInstance); the twin, fenced once, goes on. Exactly-once does
//     not rest on membership: the transactional ID's producer epoch fences
//     whichever process initialized it earlier.
//   - A session the processor recreates in the same process (after an End
//     error) closes without leaving and rejoins under the same instance ID:
//     it gets the same partitions back without a rebalance, and restores
//     them, since tasks are reset with every session.
//   - kgo never leaves the group when it closes a static member's client
//     (kgo's InstanceID docs). A clean stop therefore leaves by instance ID
//     here, unless LeaveGroupOnStop(false).

// leaveGroupTimeout bounds the LeaveGroup a clean stop sends.
const leaveGroupTimeout = 5 * time.Second

// leaveGroup removes this static member from its group after a clean stop
// whose last session ended with err, so that the group hands its
// partitions over at once. It does nothing for a dynamic member (kgo left
// for it), with LeaveGroupOnStop(false), or when the last session was
// fenced: the instance ID may then belong to a twin, which leaving would
// evict.
func (p *Processor) leaveGroup(ctx context.Context, err error) {
	id := p.cfg.groupInstanceID()
	if id == "" || p.cfg.stayOnStop || p.admin == nil || isFenced(err) || isFencedInstance(err) {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveGroupTimeout)
	defer cancel()
	resp, lerr := p.admin.LeaveGroup(lctx, kadm.LeaveGroup(p.cfg.group).InstanceIDs(id).Reason("exactly: instance stopped"))
	if lerr == nil {
		lerr = resp.Error()
	}
	switch {
	case lerr == nil:
		p.cfg.logger.Info("left the group", "group", p.cfg.group, "instance_id", id)
	case errors.Is(lerr, kerr.UnknownMemberID):
		// Not a member: it never joined, or the session timed out.
	default:
		p.cfg.logger.Warn("leaving the group failed; the group hands this instance's partitions over at its session timeout", "group", p.cfg.group, "instance_id", id, "err", lerr)
	}
}

// fencedInstanceWindow is how soon after a FENCED_INSTANCE_ID another one
// stops the instance. A live twin fences the rejoined member within a
// heartbeat interval and a rejoin (seconds); a spurious fence, from a
// JoinGroup the group applied twice, does not recur.
const fencedInstanceWindow = time.Minute

// rejoinFencedInstance decides what a session that ended with
// FENCED_INSTANCE_ID means: nil (recreate the session, rejoining under the
// same instance ID) the first time, the fencedInstance error when the
// previous one was less than fencedInstanceWindow ago. Only Run's
// goroutine calls it.
func (p *Processor) rejoinFencedInstance(err error) error {
	now := time.Now()
	last := p.fencedInstanceAt
	p.fencedInstanceAt = now
	if !last.IsZero() && now.Sub(last) < fencedInstanceWindow {
		return p.fencedInstance(err)
	}
	p.cfg.logger.Warn("the group replaced this static member (FENCED_INSTANCE_ID); rejoining once: a live twin with this instance ID would fence it again, and it would then stop",
		"group", p.cfg.group, "instance_id", p.cfg.instanceID, "window", fencedInstanceWindow, "err", err)
	return nil
}

// fencedInstance is the error of a static member that another process
// replaced in the group (FENCED_INSTANCE_ID) twice within
// fencedInstanceWindow: a twin with the same instance ID, or a restarted
// incarnation of this one while this process was frozen. Rejoining again
// would evict the other in turn, so the instance stops.
func (p *Processor) fencedInstance(err error) error {
	return fmt.Errorf("%w: another process joined group %s with instance ID %s (group.instance.id): %w", ErrFenced, p.cfg.group, p.cfg.instanceID, err)
}

// isFencedInstance reports whether err says the group replaced this
// static member (FENCED_INSTANCE_ID).
func isFencedInstance(err error) bool { return errors.Is(err, kerr.FencedInstanceID) }
