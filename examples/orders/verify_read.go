package orders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// snapshot is where every partition starts and ends when Verify starts.
type snapshot struct {
	starts kadm.ListedOffsets // log start offsets
	ends   kadm.ListedOffsets // high watermarks
	stable kadm.ListedOffsets // last stable offsets
}

// takeSnapshot lists the offsets, retrying for up to StableWait while some
// last stable offset is below its high watermark.
func (v *verifier) takeSnapshot(ctx context.Context) (*snapshot, error) {
	deadline := time.Now().Add(v.opts.StableWait)
	for {
		s, err := v.listOffsets(ctx)
		if err != nil {
			return nil, err
		}
		if s.allStable() || !time.Now().Before(deadline) {
			return s, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("waiting for stable offsets: %w", err)
		}
	}
}

func (v *verifier) listOffsets(ctx context.Context) (*snapshot, error) {
	topics := v.opts.stableTopics()
	starts, err := v.adm.ListStartOffsets(ctx, v.opts.dataTopics()...)
	if err := listErr(starts, err); err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := v.adm.ListEndOffsets(ctx, topics...)
	if err := listErr(ends, err); err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	stable, err := v.adm.ListCommittedOffsets(ctx, topics...)
	if err := listErr(stable, err); err != nil {
		return nil, fmt.Errorf("listing last stable offsets: %w", err)
	}
	return &snapshot{starts: starts, ends: ends, stable: stable}, nil
}

// listErr returns the request error or the first partition error, naming
// the partition (a missing topic is listed as partition -1).
func listErr(l kadm.ListedOffsets, err error) error {
	if err != nil {
		return err
	}
	var first error
	l.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && first == nil {
			first = fmt.Errorf("topic %s partition %d: %w", o.Topic, o.Partition, o.Err)
		}
	})
	return first
}

func (s *snapshot) allStable() bool {
	ok := true
	s.ends.Each(func(e kadm.ListedOffset) {
		if l, found := s.stable.Lookup(e.Topic, e.Partition); !found || l.Offset != e.Offset {
			ok = false
		}
	})
	return ok
}

// partitions returns the listed partitions of topic in order.
func partitions(l kadm.ListedOffsets, topic string) []int32 {
	return slices.Sorted(maps.Keys(l[topic]))
}

// checkStable reports E5: a last stable offset below its high watermark
// means a transaction is open (or its marker not yet written).
func (v *verifier) checkStable() {
	for _, t := range v.opts.stableTopics() {
		for _, p := range partitions(v.snap.ends, t) {
			end := v.snap.ends[t][p].Offset
			lso, ok := v.snap.stable.Lookup(t, p)
			switch {
			case !ok:
				v.report.addf(CheckE5, "%s[%d]: no last stable offset listed (high watermark %d)", t, p, end)
			case lso.Offset != end:
				v.report.addf(CheckE5, "%s[%d]: last stable offset %d below high watermark %d: a transaction is left open", t, p, lso.Offset, end)
			}
		}
	}
}

// checkStarts reports topics whose log no longer starts at 0: deleted
// records cannot be checked.
func (v *verifier) checkStarts() {
	for _, t := range v.opts.dataTopics() {
		for _, p := range partitions(v.snap.starts, t) {
			if s := v.snap.starts[t][p].Offset; s > 0 {
				v.report.addf(CheckRead, "%s[%d]: log starts at offset %d: earlier records were deleted, the checks are incomplete", t, p, s)
			}
		}
	}
}

// readTopic reads topic with read_committed from the start of each
// partition to its last stable offset in the snapshot, calling fn for every
// data record in partition order.
//
// Control records are kept so that reading sees the commit marker that ends
// a partition; a partition is done at the record just below its last
// stable offset, or at the first record at or past it.
func (v *verifier) readTopic(ctx context.Context, topic string, fn func(*kgo.Record)) error {
	targets, hanging := v.targets(topic)
	if len(targets) == 0 {
		return nil
	}
	cl, err := v.reader(topic, targets)
	if err != nil {
		return fmt.Errorf("creating reader for %s: %w", topic, err)
	}
	defer cl.Close()
	for len(targets) > 0 {
		progressed, err := v.poll(ctx, cl, targets, fn)
		if err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		if !progressed && allHanging(targets, hanging) {
			return nil // E5 is reported; the rest is invisible to read_committed
		}
		if !progressed {
			return fmt.Errorf("reading %s: no progress for %s at partitions %v", topic, v.opts.IdleTimeout, slices.Sorted(maps.Keys(targets)))
		}
	}
	return nil
}

// targets returns, per partition with records to read, the offset reading
// must reach, and which partitions have an open transaction.
func (v *verifier) targets(topic string) (targets map[int32]int64, hanging map[int32]bool) {
	targets, hanging = make(map[int32]int64), make(map[int32]bool)
	for _, p := range partitions(v.snap.stable, topic) {
		end := v.snap.stable[topic][p].Offset
		start, _ := v.snap.starts.Lookup(topic, p)
		if end > start.Offset {
			targets[p] = end
		}
		if hwm, ok := v.snap.ends.Lookup(topic, p); ok && hwm.Offset > end {
			hanging[p] = true
		}
	}
	return targets, hanging
}

func (v *verifier) reader(topic string, targets map[int32]int64) (*kgo.Client, error) {
	assign := make(map[int32]kgo.Offset, len(targets))
	for p := range targets {
		assign[p] = kgo.NewOffset().AtStart()
	}
	return kgo.NewClient(append(slices.Clone(v.base),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250*time.Millisecond),
	)...)
}

// poll runs one poll, waiting at most IdleTimeout, and removes finished
// partitions from targets. It reports whether any record was seen.
func (v *verifier) poll(ctx context.Context, cl *kgo.Client, targets map[int32]int64, fn func(*kgo.Record)) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, v.opts.IdleTimeout)
	defer cancel()
	fs := cl.PollFetches(pctx)
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := fetchErr(fs); err != nil {
		return false, err
	}
	progressed := false
	fs.EachRecord(func(r *kgo.Record) {
		target, ok := targets[r.Partition]
		if !ok {
			return // done; records past the snapshot are not checked
		}
		progressed = true
		if r.Offset >= target {
			delete(targets, r.Partition)
			return
		}
		if !r.Attrs.IsControl() {
			fn(r)
		}
		if r.Offset == target-1 {
			delete(targets, r.Partition)
		}
	})
	return progressed, nil
}

// fetchErr returns the first fetch error other than the poll's own timeout.
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(t string, p int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) {
			first = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
		}
	})
	return first
}

func allHanging(targets map[int32]int64, hanging map[int32]bool) bool {
	for p := range targets {
		if !hanging[p] {
			return false
		}
	}
	return true
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
