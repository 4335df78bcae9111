package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/state"
)

// restoreAssigned restores every store partition of the assigned
// partitions, then marks them ready. It runs in the OnPartitionsAssigned
// callback: kgo fetches the partitions' offsets, and so starts consuming
// them, only after the callback returns, while the member keeps
// heartbeating. Every partition of the callback is restored, even one
// tasks believed it never lost: kgo's session may have dropped the callback
// of its revoke (see tasks), and a restore from a current checkpoint reads
// nothing. A failure is fatal for the instance and is reported through
// tasks.setFatal before returning, so records of a partition that never
// became ready are never processed.
func (p *Processor) restoreAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if member, _ := cl.GroupMetadata(); member != "" {
		p.tasks.joinedAs(member)
	}
	crashpoint.Hit(crashpoint.InAssigned)
	parts := partitionsOf(assigned)
	p.tasks.assign(parts)
	p.cfg.hooks.rebalance(parts, nil)
	if len(parts) == 0 {
		return
	}
	// A transaction that committed before the revoke of one of these
	// partitions was let through (kgo holds a revoke behind End) may still
	// be applying: let it finish before reading the checkpoints.
	// With several loops on one database, a commit of another loop that
	// held one of them (loops.go).
	p.waitApplies()
	committed := &groupOffsets{p: p, cl: cl}
	if err := committed.fetch(ctx); err != nil {
		if ctx.Err() == nil { // not the session closing
			p.tasks.setFatal(fmt.Errorf("fetching the group's committed offsets for restore: %w", err))
		}
		return
	}
	ids, err := p.changelogIDs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.tasks.setFatal(fmt.Errorf("describing the changelogs for restore: %w", err))
		}
		return
	}
	for _, part := range parts {
		for _, store := range p.topo.StoreNames() {
			if err := p.restoreStore(ctx, store, part, committed, ids[store]); err != nil {
				if ctx.Err() == nil {
					p.tasks.setFatal(&RestoreError{Store: store, Partition: part, Err: err})
				}
				return
			}
		}
		p.tasks.setReady(part)
	}
}

// partitionsOf returns the distinct partition numbers of an assignment.
func partitionsOf(assigned map[string][]int32) []int32 {
	var out []int32
	for _, parts := range assigned {
		out = append(out, parts...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// changelogIDs returns each store's changelog topic ID: the identity a local
// checkpoint is bound to. A zero ID means the brokers do not report topic
// IDs.
func (p *Processor) changelogIDs(ctx context.Context) (map[string]kadm.TopicID, error) {
	topics := make([]string, 0, len(p.changelogs))
	for _, t := range p.changelogs {
		topics = append(topics, t)
	}
	var details kadm.TopicDetails
	err := p.retry(ctx, "describing changelogs", func() error {
		var err error
		if details, err = p.admin.ListTopics(ctx, topics...); err != nil {
			return err
		}
		for _, t := range topics {
			d, ok := details[t]
			if !ok || d.Err != nil {
				return fmt.Errorf("changelog %s: %w", t, errors.Join(d.Err, errMissing(ok)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make(map[string]kadm.TopicID, len(p.changelogs))
	for store, t := range p.changelogs {
		ids[store] = details[t].ID
		if ids[store] == (kadm.TopicID{}) {
			p.noTopicIDs.Do(func() {
				p.cfg.logger.Warn("the brokers report no topic IDs: a changelog deleted and recreated under the same name (a state reset) cannot be told from the one local checkpoints were taken from; after a reset, start the other instances on empty state directories", "changelog", t)
			})
		}
	}
	return ids, nil
}

// groupOffsets holds the group's committed offsets as a restore last
// fetched them.
type groupOffsets struct {
	p     *Processor
	cl    *kgo.Client
	resps kadm.OffsetResponses
}

func (g *groupOffsets) fetch(ctx context.Context) error {
	resps, err := g.p.committedOffsets(ctx, g.cl)
	if err == nil {
		g.resps = resps
	}
	return err
}

// committedOffsets fetches the group's committed offsets, waiting for
// pending transactional commits to settle (RequireStable). It asks through
// the session's own client, which has just joined the group and so knows
// its current coordinator; a separate client may still hold a coordinator
// that died (seen on Kafka with the coordinator's broker killed). Failures
// are retried until the restore timeout.
func (p *Processor) committedOffsets(ctx context.Context, cl *kgo.Client) (kadm.OffsetResponses, error) {
	adm := kadm.NewClient(cl)
	var resps kadm.OffsetResponses
	err := p.retry(ctx, "fetching committed offsets", func() error {
		var err error
		if resps, err = adm.FetchOffsets(kadm.RequireStable(ctx), p.cfg.group); err == nil {
			err = resps.Error()
		}
		return err
	})
	return resps, err
}

// retry runs fn until it succeeds, ctx is done or the restore timeout
// passed, backing off between tries. Brokers die and come back; what
// restore asks them is idempotent. A retry is a warning, except the first
// few for a topic or partition the metadata does not show yet (see
// notVisible), which are routine and logged at debug level.
func (p *Processor) retry(ctx context.Context, what string, fn func() error) error {
	deadline := time.Now().Add(p.cfg.restoreTimeout)
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		level := slog.LevelWarn
		if attempt < quietRetries && notVisible(err) {
			level = slog.LevelDebug
		}
		p.cfg.logger.Log(ctx, level, "retrying", "what", what, "attempt", attempt+1, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return err
		}
	}
}

// restoreStore brings one store partition up to the changelog. It reads
// from the local checkpoint + 1 (or the log start when there is none, or
// when the checkpoint cannot be continued) to the last stable offset, and
// repeats until the changelog's offset records reach the group's committed
// offsets: commit markers land on partitions at different moments, so a
// changelog can trail the offsets commit of the same transaction for a short
// while. The whole restore, reads included, fails once it went the restore
// timeout without progress (a broker down, a changelog that never reaches
// the committed offsets).
func (p *Processor) restoreStore(ctx context.Context, store string, part int32, committed *groupOffsets, id kadm.TopicID) (err error) {
	begin := time.Now()
	topic := p.changelogs[store]
	ctx, wd := newWatchdog(ctx, p.cfg.restoreTimeout)
	defer func() {
		wd.stop()
		if err != nil && errors.Is(context.Cause(ctx), errRestoreStalled) {
			err = fmt.Errorf("changelog %s partition %d made no progress for %s, the restore timeout%s (%w): %w",
				topic, part, p.cfg.restoreTimeout, p.restoreGap(store, part, committed.resps), err, ErrRestoreIncomplete)
		}
	}()
	from, wiped, err := p.restoreStart(ctx, store, part, id)
	if err != nil {
		return err
	}
	r := p.db.Load().NewRestorer(store, part, p.cfg.restoreBatch)
	defer r.Discard()
	next := from
	p.restoreCl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(from)}})
	defer p.restoreCl.RemoveConsumePartitions(map[string][]int32{topic: {part}})
	for {
		target, err := p.lastStable(ctx, topic, part)
		if err != nil {
			return err
		}
		if next, err = p.readChangelog(ctx, r, wd, store, topic, part, next, target); err != nil {
			return err
		}
		if err := r.Flush(); err != nil {
			return err
		}
		done, err := p.restoreComplete(store, part, committed.resps)
		if errors.Is(err, ErrStateAhead) {
			// The offsets were fetched when the assignment began; the
			// group may have committed more since (this member
			// stalled, lost the partition, got it back). Only offsets
			// fetched now can tell state ahead of the group.
			if ferr := committed.fetch(ctx); ferr != nil {
				return ferr
			}
			done, err = p.restoreComplete(store, part, committed.resps)
		}
		if err != nil || done {
			if done {
				p.finishRestore(store, part, from, r.Applied(), wiped, begin)
			}
			return err
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// restoreGap says, for a stalled restore's error, which committed offset
// the restore waits to see an offset record of and how far the changelog
// took it.
func (p *Processor) restoreGap(store string, part int32, committed kadm.OffsetResponses) string {
	for _, topic := range p.topo.StoreSources(store) {
		c, ok := committed.Lookup(topic, part)
		if !ok || c.Err != nil || c.At <= 0 {
			continue
		}
		got, has, err := p.db.Load().InputCheckpoint(inputCheckpointName(store, topic), part)
		switch {
		case err != nil:
			return ""
		case !has:
			return fmt.Sprintf(": the group committed %s offset %d but the changelog holds no offset record for %s"+
				" (was it deleted or created after that commit? if a --reset-state stopped half way, run it again)", topic, c.At, topic)
		case got < c.At-1:
			return fmt.Sprintf(": the group committed %s offset %d, the changelog's offset records reach only %d", topic, c.At, got+1)
		}
	}
	return ""
}

// errRestoreStalled is the cause a restore's context ends with when the
// restore made no progress for the restore timeout.
var errRestoreStalled = errors.New("restore stalled")

// watchdog cancels a restore's context once it went its timeout without
// progress.
type watchdog struct {
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
}

func newWatchdog(ctx context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: d, cancel: cancel}
	w.timer = time.AfterFunc(d, func() { cancel(errRestoreStalled) })
	return ctx, w
}

// progress restarts the timeout.
func (w *watchdog) progress() { w.timer.Reset(w.d) }

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
}

func (p *Processor) finishRestore(store string, part int32, from, applied int64, wiped bool, begin time.Time) {
	p.progressMu.Lock()
	p.progressAt = time.Time{}
	p.progressMu.Unlock()
	p.stats.restored.Add(applied)
	p.stats.restores.Add(1)
	info := RestoreInfo{Store: store, Partition: part, From: from, Records: applied, Wiped: wiped, Duration: time.Since(begin)}
	p.cfg.logger.Info("restored store partition", "store", store, "partition", part, "from", from,
		"records", applied, "wiped", wiped, "duration", info.Duration)
	p.cfg.hooks.restore(info)
}

// restoreStart decides where to read the changelog from. The local
// checkpoint is continued only when it was taken from this very changelog
// (its topic ID, bound to the store partition when its restore began) and
// lies within it; otherwise the partition is wiped, bound to the changelog
// and restored from the log start: there is no checkpoint, the changelog was
// deleted and recreated (a state reset) or belongs to another cluster, the
// checkpoint is below the log start (compaction or retention removed what
// follows it) or at or past the end (the changelog was truncated).
func (p *Processor) restoreStart(ctx context.Context, store string, part int32, id kadm.TopicID) (from int64, wiped bool, err error) {
	topic := p.changelogs[store]
	start, err := p.listOffset(ctx, p.admin.ListStartOffsets, "log start", topic, part)
	if err != nil {
		return 0, false, err
	}
	end, err := p.lastStable(ctx, topic, part)
	if err != nil {
		return 0, false, err
	}
	cp, has, err := p.db.Load().Checkpoint(store, part)
	if err != nil {
		return 0, false, err
	}
	bound, isBound, err := p.db.Load().Binding(store, part)
	if err != nil {
		return 0, false, err
	}
	var why string
	switch {
	case !has:
		why = "no checkpoint"
	case !isBound:
		why = "the checkpoint names no changelog (state of an older version)"
	case string(bound) != string(id[:]):
		why = fmt.Sprintf("the changelog was recreated or is another cluster's: checkpoint of topic ID %x, changelog has %x", bound, id[:])
	case cp+1 < start:
		why = "the checkpoint is below the log start"
	case cp >= end:
		why = "the checkpoint is past the last stable offset"
	default:
		return cp + 1, false, nil
	}
	inputs := make([]string, 0, len(p.topo.StoreSources(store)))
	for _, src := range p.topo.StoreSources(store) {
		inputs = append(inputs, inputCheckpointName(store, src))
	}
	inputs = append(inputs, inputCheckpointName(store, streamTimeTopic))
	if err := p.db.Load().ResetPartition(store, part, inputs, id[:]); err != nil {
		return 0, false, err
	}
	if has {
		p.cfg.logger.Warn("local state cannot continue from its checkpoint; wiped and restoring from the log start",
			"store", store, "partition", part, "why", why, "checkpoint", cp, "log_start", start, "last_stable", end)
	}
	return start, has, nil
}

// errNotInResponse is errMissing's error.
var errNotInResponse = errors.New("partition missing from the response")

// errMissing returns errNotInResponse unless ok.
func errMissing(ok bool) error {
	if ok {
		return nil
	}
	return errNotInResponse
}

// quietRetries is how many retries of a notVisible error log at debug
// level: with the backoff, about the first 350ms, what a topic created a
// moment ago or a leader moving takes to settle.
const quietRetries = 3

// notVisible reports whether err says the metadata or a broker does not
// know a topic or partition yet, or knows no leader for it (what a cluster
// answers right after a topic's creation or during a leader election), or
// that the group's offsets wait for a transaction to settle (what a
// RequireStable fetch answers right after a rebalance that aborted or
// committed a transaction).
func notVisible(err error) bool {
	return errors.Is(err, errNotInResponse) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.LeaderNotAvailable) || errors.Is(err, kerr.NotLeaderForPartition) ||
		errors.Is(err, kerr.UnstableOffsetCommit)
}

// lastStable returns the last stable offset of one partition: every
// transaction below it is decided.
func (p *Processor) lastStable(ctx context.Context, topic string, part int32) (int64, error) {
	return p.listOffset(ctx, p.admin.ListCommittedOffsets, "last stable", topic, part)
}

// listOffset lists one partition's offset with list, retrying: a topic just
// created reaches every broker's metadata a moment later, and a partition's
// leader may be down until another takes over.
func (p *Processor) listOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error),
	what, topic string, part int32,
) (int64, error) {
	var off int64
	err := p.retry(ctx, "listing "+what+" offsets", func() error {
		offs, err := list(ctx, topic)
		if err != nil {
			return err
		}
		o, ok := offs.Lookup(topic, part)
		if !ok || o.Err != nil {
			return errors.Join(o.Err, errMissing(ok))
		}
		off = o.Offset
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("listing %s offset of %s partition %d: %w", what, topic, part, err)
	}
	return off, nil
}

// readChangelog applies changelog records from next up to target (the last
// stable offset). Control records are kept by the restore client so that
// the read can tell it passed a trailing commit or abort marker.
func (p *Processor) readChangelog(ctx context.Context, r *state.Restorer, wd *watchdog, store, topic string, part int32, next, target int64) (int64, error) {
	for next < target {
		before := next
		fs := p.restoreCl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return next, err
		}
		var ferr error
		fs.EachError(func(t string, pp int32, err error) {
			if t == topic && pp == part {
				ferr = errors.Join(ferr, err)
			}
		})
		if ferr != nil {
			return next, fmt.Errorf("reading changelog %s partition %d: %w", topic, part, ferr)
		}
		var aerr error
		fs.EachRecord(func(rec *kgo.Record) {
			if aerr != nil || rec.Topic != topic || rec.Partition != part || rec.Offset < next {
				return
			}
			next = rec.Offset + 1
			aerr = applyChangelogRecord(r, store, rec)
			if r.Applied() == int64(p.cfg.restoreBatch)+1 {
				crashpoint.Hit(crashpoint.MidRestore) // one batch flushed, more to come
			}
		})
		if aerr != nil {
			return next, aerr
		}
		if next > before {
			wd.progress()
		}
		p.restoreProgress(RestoreProgress{Store: store, Partition: part, Applied: r.Applied(), Offset: next, Target: target})
	}
	return next, nil
}

// restoreProgress reports progress to the hook on every poll and to the log
// every five seconds: records, rate and what remains.
func (p *Processor) restoreProgress(rp RestoreProgress) {
	p.cfg.hooks.restoreProgress(rp)
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	now := time.Now()
	if p.progressAt.IsZero() {
		p.progressAt, p.progressN = now, rp.Applied
		return
	}
	if d := now.Sub(p.progressAt); d >= 5*time.Second {
		rate := float64(rp.Applied-p.progressN) / d.Seconds()
		p.cfg.logger.Info("restoring", "store", rp.Store, "partition", rp.Partition, "records", rp.Applied,
			"rate_per_s", int64(rate), "remaining_offsets", rp.Target-rp.Offset)
		p.progressAt, p.progressN = now, rp.Applied
	}
}

func applyChangelogRecord(r *state.Restorer, store string, rec *kgo.Record) error {
	if rec.Attrs.IsControl() {
		return r.Skip(rec.Offset)
	}
	topic, off, isOffset, err := parseOffsetRecord(rec)
	switch {
	case err != nil:
		return err
	case isOffset:
		return r.SetInputCheckpoint(inputCheckpointName(store, topic), off, rec.Offset)
	case rec.Value == nil:
		return r.Delete(rec.Offset, rec.Key)
	default:
		return r.Put(rec.Offset, rec.Key, rec.Value)
	}
}

// restoreComplete reports whether the store partition reflects every
// transaction the group committed: for each input feeding the store, the
// offset record restored (or applied locally) must be the group's committed
// offset minus one. Ahead of it means the group's offsets were moved back.
func (p *Processor) restoreComplete(store string, part int32, committed kadm.OffsetResponses) (bool, error) {
	for _, topic := range p.topo.StoreSources(store) {
		got, has, err := p.db.Load().InputCheckpoint(inputCheckpointName(store, topic), part)
		if err != nil {
			return false, err
		}
		want := int64(-1)
		if c, ok := committed.Lookup(topic, part); ok && c.Err == nil && c.At >= 0 {
			want = c.At - 1
		}
		switch {
		case has && got > want:
			return false, fmt.Errorf("store %q partition %d reflects %s offset %d but group %q committed only through %d: %w",
				store, part, topic, got, p.cfg.group, want, ErrStateAhead)
		case want >= 0 && (!has || got < want):
			return false, nil
		}
	}
	return true, nil
}
