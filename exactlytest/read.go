package exactlytest

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

// ReadOptions configures ReadCommitted and ReadCommittedFunc. The zero
// value reads every partition from its log start to its last stable offset
// within a minute.
type ReadOptions struct {
	// Partitions are the partitions to read. The default value is nil:
	// every partition of the topic.
	Partitions []int32

	// From is the offset to start each partition at; a partition missing
	// from From starts at its log start offset. The default value is nil.
	From map[int32]int64

	// Ends is the offset to read each partition up to (excluding); with
	// Ends set, a partition missing from it is not read. The default value
	// is nil: the last stable offsets (the high watermarks with
	// Uncommitted) listed when reading starts.
	Ends map[int32]int64

	// Timeout bounds the whole read; a negative value leaves it to ctx
	// (and IdleTimeout). The default value is 1 minute.
	Timeout time.Duration

	// IdleTimeout, when positive, stops reading once no record of an
	// unfinished partition arrived for that long: a partition whose last
	// stable offset sits behind an open transaction may end in records
	// read_committed never shows. The error is then an IncompleteError
	// wrapping ErrIdle. The default value is 0: only Timeout bounds.
	IdleTimeout time.Duration

	// Uncommitted reads with read_uncommitted instead, to the high
	// watermarks: aborted and open records included. The default value is
	// false.
	Uncommitted bool

	keepControl bool // pass control records to fn (ReadAborted)
}

func (o *ReadOptions) ensureDefaults() {
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
}

// ReadCommitted reads topic with read_committed (see ReadOptions) and
// returns its data records per partition, in offset order. Control
// records are seen while reading, so a partition ending in a commit or
// abort marker is known to be read, but they are not returned.
//
// cl is used for admin requests and its client-level options (seed
// brokers, TLS, SASL, dialer, logger) for a reader client of its own; its
// consumer, group and producer options are dropped. A missing topic is an
// error naming it. If reading stops before the end the error is an
// IncompleteError and the records read so far are returned with it.
func ReadCommitted(ctx context.Context, cl *kgo.Client, topic string, opts ReadOptions) (map[int32][]*kgo.Record, error) {
	out := make(map[int32][]*kgo.Record)
	err := ReadCommittedFunc(ctx, cl, topic, opts, func(r *kgo.Record) error {
		out[r.Partition] = append(out[r.Partition], r)
		return nil
	})
	return out, err
}

// ReadCommittedFunc is ReadCommitted calling fn for every data record, in
// offset order per partition, instead of keeping them: for topics too big
// to hold. An error from fn stops reading and is returned as is.
func ReadCommittedFunc(ctx context.Context, cl *kgo.Client, topic string, opts ReadOptions, fn func(*kgo.Record) error) error {
	opts.ensureDefaults()
	r := &reader{topic: topic, opts: opts, fn: fn}
	if err := r.plan(ctx, kadm.NewClient(cl)); err != nil {
		return err
	}
	if len(r.ends) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(ClientOpts(cl), r.consumeOpts()...)...)
	if err != nil {
		return fmt.Errorf("creating reader for %s: %w", topic, err)
	}
	defer rd.Close()
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	return r.run(ctx, rd)
}

// Records returns the records of recs in partition order.
func Records(recs map[int32][]*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, p := range slices.Sorted(maps.Keys(recs)) {
		out = append(out, recs[p]...)
	}
	return out
}

// ClientOpts returns cl's client-level options: cl's options minus its
// consumer, group and producer options. Seed brokers, TLS, SASL, dialer
// and logger carry over.
func ClientOpts(cl *kgo.Client) []kgo.Opt {
	var out []kgo.Opt
	for _, o := range cl.Opts() {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt, kgo.ProducerOpt:
			continue
		}
		out = append(out, o)
	}
	return out
}

// reader is one read of a topic.
type reader struct {
	topic string
	opts  ReadOptions
	fn    func(*kgo.Record) error

	starts map[int32]kgo.Offset
	ends   map[int32]int64 // of the partitions not read to their end yet
}

// plan sets where each partition starts and ends, leaving out partitions
// with nothing to read.
func (r *reader) plan(ctx context.Context, adm *kadm.Client) error {
	ends := r.opts.Ends
	if ends == nil {
		list, what := adm.ListCommittedOffsets, "last stable"
		if r.opts.Uncommitted {
			list, what = adm.ListEndOffsets, "end"
		}
		listed, err := list(ctx, r.topic)
		if err := ListErr(listed, err); err != nil {
			return fmt.Errorf("listing %s offsets of %s: %w", what, r.topic, err)
		}
		ends = offsetsOf(listed, r.topic)
	}
	if r.opts.Partitions != nil {
		ends = pick(ends, r.opts.Partitions)
	}
	logStarts, err := r.logStarts(ctx, adm, ends)
	if err != nil {
		return err
	}
	r.starts, r.ends = make(map[int32]kgo.Offset), make(map[int32]int64)
	for p, end := range ends {
		from, ok := r.opts.From[p]
		if !ok {
			from = logStarts[p]
		}
		if end > from {
			r.starts[p], r.ends[p] = kgo.NewOffset().At(from), end
		}
	}
	return nil
}

// logStarts lists the log start offsets if a partition to read has no
// From offset.
func (r *reader) logStarts(ctx context.Context, adm *kadm.Client, ends map[int32]int64) (map[int32]int64, error) {
	for p := range ends {
		if _, ok := r.opts.From[p]; ok {
			continue
		}
		listed, err := adm.ListStartOffsets(ctx, r.topic)
		if err := ListErr(listed, err); err != nil {
			return nil, fmt.Errorf("listing start offsets of %s: %w", r.topic, err)
		}
		return offsetsOf(listed, r.topic), nil
	}
	return nil, nil
}

func (r *reader) consumeOpts() []kgo.Opt {
	level := kgo.ReadCommitted()
	if r.opts.Uncommitted {
		level = kgo.ReadUncommitted()
	}
	return []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: r.starts}),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250 * time.Millisecond),
	}
}

// run polls until every partition is read to its end.
func (r *reader) run(ctx context.Context, rd *kgo.Client) error {
	for len(r.ends) > 0 {
		progressed, err := r.poll(ctx, rd)
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return r.incomplete(err)
		}
		if !progressed && r.opts.IdleTimeout > 0 {
			return r.incomplete(ErrIdle)
		}
	}
	return nil
}

func (r *reader) incomplete(err error) error {
	return &IncompleteError{Topic: r.topic, Partitions: slices.Sorted(maps.Keys(r.ends)), Err: err}
}

// poll runs one poll, waiting at most IdleTimeout if set, and reports
// whether a record of an unfinished partition arrived. A partition is done
// at the record just below its end, or at the first record at or past it
// (when its last records are invisible, as aborted records are to
// read_committed); done partitions are paused.
func (r *reader) poll(ctx context.Context, rd *kgo.Client) (bool, error) {
	pctx := ctx
	if r.opts.IdleTimeout > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, r.opts.IdleTimeout)
		defer cancel()
	}
	fs := rd.PollFetches(pctx)
	if err := fetchErr(fs); err != nil {
		return false, fmt.Errorf("reading %s: %w", r.topic, err)
	}
	progressed := false
	var done []int32
	var ferr error
	fs.EachRecord(func(rec *kgo.Record) {
		end, ok := r.ends[rec.Partition]
		if !ok || ferr != nil {
			return
		}
		progressed = true
		if rec.Offset < end && (r.opts.keepControl || !rec.Attrs.IsControl()) {
			ferr = r.fn(rec)
		}
		if rec.Offset >= end-1 {
			delete(r.ends, rec.Partition)
			done = append(done, rec.Partition)
		}
	})
	if len(done) > 0 {
		rd.PauseFetchPartitions(map[string][]int32{r.topic: done})
	}
	return progressed, ferr
}

// fetchErr returns the first fetch error other than the poll's own end.
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(t string, p int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			first = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
		}
	})
	return first
}

func pick(offsets map[int32]int64, parts []int32) map[int32]int64 {
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if o, ok := offsets[p]; ok {
			out[p] = o
		}
	}
	return out
}
