package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// countVisible reads partitions of topic with read_committed, each from
// ranges[p][0] up to (excluding) ranges[p][1], its last stable offset, and
// counts the records a read_committed consumer would get: commit and
// abort markers and aborted records take offsets but are not records. It
// returns the count of every partition read to the end within timeout;
// the others are absent.
//
// The reader is a new client with cl's options (seeds, TLS, SASL) plus
// direct partition consumption, so cl must not be a group or
// transactional client.
func countVisible(ctx context.Context, cl *kgo.Client, topic string, ranges map[int32][2]int64, timeout time.Duration) (map[int32]int64, error) {
	offsets := map[int32]kgo.Offset{}
	for p, r := range ranges {
		offsets[p] = kgo.NewOffset().At(r[0])
	}
	rd, err := kgo.NewClient(append(cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating the lag reader: %w", err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	counts, done := map[int32]int64{}, map[int32]bool{}
	for len(done) < len(ranges) && ctx.Err() == nil {
		fs := rd.PollFetches(ctx)
		var finished []int32
		fs.EachRecord(func(r *kgo.Record) {
			end := ranges[r.Partition][1]
			if done[r.Partition] {
				return
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				counts[r.Partition]++
			}
			if r.Offset >= end-1 { // past the range: the stable offset moved on since it was listed
				done[r.Partition] = true
				finished = append(finished, r.Partition)
			}
		})
		if len(finished) > 0 {
			rd.PauseFetchPartitions(map[string][]int32{topic: finished})
		}
	}
	out := map[int32]int64{}
	for p := range done {
		out[p] = counts[p]
	}
	return out, nil
}
