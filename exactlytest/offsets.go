package exactlytest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Offsets is where every partition of some topics starts and ends at one
// moment.
type Offsets struct {
	// Start holds the log start offsets.
	Start kadm.ListedOffsets
	// End holds the high watermarks.
	End kadm.ListedOffsets
	// Stable holds the last stable offsets.
	Stable kadm.ListedOffsets
}

// ListOffsets lists the start, end and last stable offsets of topics. A
// topic that does not exist is an error naming it.
func ListOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (*Offsets, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err := ListErr(starts, err); err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err := ListErr(ends, err); err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topics...)
	if err := ListErr(stable, err); err != nil {
		return nil, fmt.Errorf("listing last stable offsets: %w", err)
	}
	return &Offsets{Start: starts, End: ends, Stable: stable}, nil
}

// WaitStable lists the offsets of topics until no transaction holds a last
// stable offset below its high watermark, or wait passed, and returns the
// last listing. Real brokers write commit markers asynchronously, so a
// pipeline that just stopped may need a moment. A wait of 0 lists once.
func WaitStable(ctx context.Context, adm *kadm.Client, wait time.Duration, topics ...string) (*Offsets, error) {
	deadline := time.Now().Add(wait)
	for {
		o, err := ListOffsets(ctx, adm, topics...)
		if err != nil {
			return nil, err
		}
		if len(o.Hanging()) == 0 || !time.Now().Before(deadline) {
			return o, nil
		}
		if err := Sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("waiting for stable offsets: %w", err)
		}
	}
}

// CheckNoHangingTransactions is the hanging-transaction check (E5): once
// the pipeline stopped, no open transaction may hold a partition's last
// stable offset below its high watermark. It returns a line per partition
// of topics that fails, waiting up to wait for markers to land (see
// WaitStable).
func CheckNoHangingTransactions(ctx context.Context, adm *kadm.Client, wait time.Duration, topics ...string) ([]string, error) {
	o, err := WaitStable(ctx, adm, wait, topics...)
	if err != nil {
		return nil, err
	}
	return o.Hanging(), nil
}

// Hanging returns a line for every partition whose last stable offset is
// below its high watermark (a transaction is left open, or its marker not
// yet written) or was not listed, in topic and partition order.
func (o *Offsets) Hanging() []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(o.End)) {
		for _, p := range slices.Sorted(maps.Keys(o.End[t])) {
			end := o.End[t][p].Offset
			lso, ok := o.Stable.Lookup(t, p)
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s[%d]: no last stable offset listed (high watermark %d)", t, p, end))
			case lso.Offset != end:
				out = append(out, fmt.Sprintf("%s[%d]: last stable offset %d below high watermark %d: a transaction is left open", t, p, lso.Offset, end))
			}
		}
	}
	return out
}

// EndOffsets returns the high watermark of every partition of topic.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err := ListErr(ends, err); err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	return offsetsOf(ends, topic), nil
}

// StableOffsets returns the last stable offset of every partition of
// topic.
func StableOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err := ListErr(stable, err); err != nil {
		return nil, fmt.Errorf("listing last stable offsets of %s: %w", topic, err)
	}
	return offsetsOf(stable, topic), nil
}

// GroupOffsets returns group's committed offset of every partition of
// topic it committed.
func GroupOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetching offsets of group %s: %w", group, err)
	}
	out := make(map[int32]int64)
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// Lag returns how many offsets of topic group has not committed yet, over
// all partitions: a partition without a committed offset counts from 0.
func Lag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	ends, err := EndOffsets(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	committed, err := GroupOffsets(ctx, adm, group, topic)
	if err != nil {
		return 0, err
	}
	var lag int64
	for p, end := range ends {
		lag += end - max(committed[p], 0)
	}
	return lag, nil
}

// ListErr returns err or the first partition error of l, naming the
// partition (a missing topic is listed as partition -1).
func ListErr(l kadm.ListedOffsets, err error) error {
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

func offsetsOf(l kadm.ListedOffsets, topic string) map[int32]int64 {
	out := make(map[int32]int64, len(l[topic]))
	for p, o := range l[topic] {
		out[p] = o.Offset
	}
	return out
}

// Sleep waits for d or until ctx ends, returning ctx's error then: the
// pause of a polling loop that must stop with its context.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
