package exactlytest

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Duplicates is the building block of E1: it returns a line for every id
// that more than one record of recs has, in id order. id names what a
// record stands for (an order id, a key and sequence number); records it
// returns "" for are skipped.
func Duplicates(recs map[int32][]*kgo.Record, id func(*kgo.Record) string) []string {
	seen := make(map[string][]string)
	for _, r := range Records(recs) {
		if k := id(r); k != "" {
			seen[k] = append(seen[k], where(r))
		}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		if at := seen[k]; len(at) > 1 {
			out = append(out, fmt.Sprintf("%q is in %d records: %v", k, len(at), at))
		}
	}
	return out
}

// Missing is the building block of E2: it returns a line for every id of
// want that no record of recs has, in id order. id is as for Duplicates.
func Missing(want []string, recs map[int32][]*kgo.Record, id func(*kgo.Record) string) []string {
	have := make(map[string]bool)
	for _, r := range Records(recs) {
		have[id(r)] = true
	}
	var out []string
	for _, k := range slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(want))))) {
		if !have[k] {
			out = append(out, fmt.Sprintf("%q is in no record", k))
		}
	}
	return out
}

// ReadAborted reads topic with read_uncommitted (see ReadOptions; From,
// Partitions and Timeout apply, Ends is the high watermarks) and returns
// the records of aborted transactions per partition, in offset order:
// transactional records followed, for their producer, by an abort marker.
// Records of transactions still open are not returned.
func ReadAborted(ctx context.Context, cl *kgo.Client, topic string, opts ReadOptions) (map[int32][]*kgo.Record, error) {
	opts.Uncommitted = true
	opts.Ends = nil
	all, err := readWithControl(ctx, cl, topic, opts)
	if err != nil {
		return nil, err
	}
	out := make(map[int32][]*kgo.Record)
	for p, recs := range all {
		if a := aborted(recs); len(a) > 0 {
			out[p] = a
		}
	}
	return out, nil
}

// AbortedVisible checks that no aborted data is visible: it reads topic
// with read_uncommitted for the records of aborted transactions
// (ReadAborted), then with read_committed (ReadCommitted), and returns a
// line for every aborted record read_committed shows. It also returns how
// many aborted records there were, for tests that must see some.
func AbortedVisible(ctx context.Context, cl *kgo.Client, topic string, opts ReadOptions) (violations []string, aborted int, err error) {
	ab, err := ReadAborted(ctx, cl, topic, opts)
	if err != nil {
		return nil, 0, err
	}
	committed, err := ReadCommitted(ctx, cl, topic, opts)
	if err != nil {
		return nil, 0, err
	}
	visible := make(map[[2]int64]bool)
	for _, r := range Records(committed) {
		visible[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	for _, r := range Records(ab) {
		aborted++
		if visible[[2]int64{int64(r.Partition), r.Offset}] {
			violations = append(violations, fmt.Sprintf("%s: aborted record is visible to read_committed", where(r)))
		}
	}
	return violations, aborted, nil
}

// readWithControl reads like ReadCommittedFunc, keeping control records.
func readWithControl(ctx context.Context, cl *kgo.Client, topic string, opts ReadOptions) (map[int32][]*kgo.Record, error) {
	out := make(map[int32][]*kgo.Record)
	opts.keepControl = true
	err := ReadCommittedFunc(ctx, cl, topic, opts, func(r *kgo.Record) error {
		out[r.Partition] = append(out[r.Partition], r)
		return nil
	})
	return out, err
}

// aborted returns the transactional records of recs (one partition, in
// offset order, control records included) that an abort marker of their
// producer ends.
func aborted(recs []*kgo.Record) []*kgo.Record {
	open := make(map[int64][]*kgo.Record) // per producer id
	var out []*kgo.Record
	for _, r := range recs {
		switch {
		case r.Attrs.IsControl():
			if isAbortMarker(r) {
				out = append(out, open[r.ProducerID]...)
			}
			delete(open, r.ProducerID)
		case r.Attrs.IsTransactional():
			open[r.ProducerID] = append(open[r.ProducerID], r)
		}
	}
	slices.SortFunc(out, func(a, b *kgo.Record) int { return cmp.Compare(a.Offset, b.Offset) })
	return out
}

// isAbortMarker reports whether a control record is an abort marker: its
// key is a version (int16) and a type (int16), 0 for abort.
func isAbortMarker(r *kgo.Record) bool {
	return len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 0
}

func where(r *kgo.Record) string {
	return fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
}
