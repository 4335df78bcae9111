package admin

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// countVisible reads partitions of topic with read_committed, each from
// ranges[p][0] up to (excluding) ranges[p][1], its last stable offset, and
// counts the records a read_committed consumer would get: commit and
// abort markers and aborted records take offsets but are not records. It
// returns the count of every partition read to the end within timeout;
// the others are absent.
//
// It is the project's one read-to-end reader (exactlytest.ReadCommitted),
// on a client of its own with cl's connection options.
func countVisible(ctx context.Context, cl *kgo.Client, topic string, ranges map[int32][2]int64, timeout time.Duration) (map[int32]int64, error) {
	from, ends := map[int32]int64{}, map[int32]int64{}
	for p, r := range ranges {
		from[p], ends[p] = r[0], r[1]
	}
	counts := map[int32]int64{}
	err := exactlytest.ReadCommittedFunc(ctx, cl, topic, exactlytest.ReadOptions{From: from, Ends: ends, Timeout: timeout},
		func(r *kgo.Record) error { counts[r.Partition]++; return nil })
	unfinished := map[int32]bool{}
	if ie, ok := errors.AsType[*exactlytest.IncompleteError](err); ok {
		for _, p := range ie.Partitions {
			unfinished[p] = true
		}
	} else if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p := range ranges {
		if !unfinished[p] {
			out[p] = counts[p]
		}
	}
	return out, nil
}
