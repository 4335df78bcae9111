package orders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// takeSnapshot lists where every partition starts and ends, retrying for
// up to StableWait while some last stable offset is below its high
// watermark.
func (v *verifier) takeSnapshot(ctx context.Context) (*exactlytest.Offsets, error) {
	return exactlytest.WaitStable(ctx, v.adm, v.opts.StableWait, v.opts.stableTopics()...)
}

// partitions returns the listed partitions of topic in order.
func partitions(l kadm.ListedOffsets, topic string) []int32 {
	return slices.Sorted(maps.Keys(l[topic]))
}

// checkStable reports E5: a last stable offset below its high watermark
// means a transaction is open (or its marker not yet written).
func (v *verifier) checkStable() {
	for _, h := range v.snap.Hanging() {
		v.report.addf(CheckE5, "%s", h)
	}
}

// checkStarts reports topics whose log no longer starts at 0: deleted
// records cannot be checked.
func (v *verifier) checkStarts() {
	for _, t := range v.opts.dataTopics() {
		for _, p := range partitions(v.snap.Start, t) {
			if s := v.snap.Start[t][p].Offset; s > 0 {
				v.report.addf(CheckRead, "%s[%d]: log starts at offset %d: earlier records were deleted, the checks are incomplete", t, p, s)
			}
		}
	}
}

// readTopic reads topic with read_committed from the start of each
// partition to its last stable offset in the snapshot, calling fn for every
// data record in partition order (exactlytest.ReadCommittedFunc).
//
// A partition with an open transaction may end, below its last stable
// offset, in records read_committed never shows: reading stops after
// IdleTimeout without progress, and that is no error if every partition
// left has an open transaction (E5 is reported).
func (v *verifier) readTopic(ctx context.Context, topic string, fn func(*kgo.Record)) error {
	from, ends, hanging := v.targets(topic)
	if len(ends) == 0 {
		return nil
	}
	err := exactlytest.ReadCommittedFunc(ctx, v.cl, topic, exactlytest.ReadOptions{
		From: from, Ends: ends, IdleTimeout: v.opts.IdleTimeout, Timeout: -1,
	}, func(r *kgo.Record) error { fn(r); return nil })
	var inc *exactlytest.IncompleteError
	switch {
	case errors.As(err, &inc) && errors.Is(err, exactlytest.ErrIdle) && allHanging(inc.Partitions, hanging):
		return nil // E5 is reported; the rest is invisible to read_committed
	case errors.As(err, &inc) && errors.Is(err, exactlytest.ErrIdle):
		return fmt.Errorf("reading %s: no progress for %s at partitions %v", topic, v.opts.IdleTimeout, inc.Partitions)
	case err != nil:
		return fmt.Errorf("reading %s: %w", topic, err)
	}
	return nil
}

// targets returns, per partition with records to read, the offset reading
// starts at and the offset it must reach, and which partitions have an
// open transaction.
func (v *verifier) targets(topic string) (from, ends map[int32]int64, hanging map[int32]bool) {
	from, ends, hanging = make(map[int32]int64), make(map[int32]int64), make(map[int32]bool)
	for _, p := range partitions(v.snap.Stable, topic) {
		end := v.snap.Stable[topic][p].Offset
		start, _ := v.snap.Start.Lookup(topic, p)
		if end > start.Offset {
			from[p], ends[p] = start.Offset, end
		}
		if hwm, ok := v.snap.End.Lookup(topic, p); ok && hwm.Offset > end {
			hanging[p] = true
		}
	}
	return from, ends, hanging
}

func allHanging(parts []int32, hanging map[int32]bool) bool {
	for _, p := range parts {
		if !hanging[p] {
			return false
		}
	}
	return true
}
