package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FetchOnly is the restore's ceiling: a bare consumer with the restore
// client's options reading the changelogs from their start to their end
// and doing nothing with the records, as the bare transactional loop is
// the pipeline's. Serial reads one partition after another, as an
// instance restores them; Concurrent reads every partition at once.
type FetchOnly struct {
	Records    int64         `json:"records"` // records read: the restore's, and the processor's offset records (no control records)
	Serial     time.Duration `json:"serial_ns"`
	Concurrent time.Duration `json:"concurrent_ns"`
}

// SerialPerSec and ConcurrentPerSec return the two reads' rates.
func (f FetchOnly) SerialPerSec() float64     { return perSecond(f.Records, f.Serial) }
func (f FetchOnly) ConcurrentPerSec() float64 { return perSecond(f.Records, f.Concurrent) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// fetchOnly reads topics to their end offsets, one partition after
// another and then all at once.
func (r *runner) fetchOnly(ctx context.Context, topics []string) (FetchOnly, error) {
	ends, err := r.cluster.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return FetchOnly{}, err
	}
	if err := ends.Error(); err != nil {
		return FetchOnly{}, err
	}
	var parts []kadm.ListedOffset
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			parts = append(parts, o)
		}
	})
	var f FetchOnly
	start := time.Now()
	for _, p := range parts {
		n, err := r.readToEnd(ctx, []kadm.ListedOffset{p})
		if err != nil {
			return FetchOnly{}, err
		}
		f.Records += n
	}
	f.Serial = time.Since(start)
	start = time.Now()
	n, err := r.readToEnd(ctx, parts)
	if err != nil {
		return FetchOnly{}, err
	}
	f.Concurrent = time.Since(start)
	if n != f.Records {
		return FetchOnly{}, fmt.Errorf("fetch only: %d records read at once, %d one partition after another", n, f.Records)
	}
	return f, nil
}

// readToEnd reads parts from their start until each reached its end
// offset, with the options of the processor's restore client, and
// returns the data records read.
func (r *runner) readToEnd(ctx context.Context, parts []kadm.ListedOffset) (int64, error) {
	from := make(map[string]map[int32]kgo.Offset)
	left := make(map[string]map[int32]int64)
	for _, p := range parts {
		if from[p.Topic] == nil {
			from[p.Topic], left[p.Topic] = make(map[int32]kgo.Offset), make(map[int32]int64)
		}
		from[p.Topic][p.Partition] = kgo.NewOffset().AtStart()
		left[p.Topic][p.Partition] = p.Offset
	}
	cl, err := r.cluster.client(kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumePartitions(from))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RunTimeout)
	defer cancel()
	var n int64
	for open := len(parts); open > 0; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("fetch only: %d partitions not read to their end: %w", open, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s/%d: %w", t, p, err)) })
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if !rec.Attrs.IsControl() {
				n++
			}
			if end := left[rec.Topic][rec.Partition]; end > 0 && rec.Offset+1 >= end {
				left[rec.Topic][rec.Partition] = 0
				open--
			}
		})
	}
	return n, nil
}
