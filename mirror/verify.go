package mirror

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// RenamePrefix is the mirror's rename prefix: source topic t is
	// target topic RenamePrefix+t. The default value is empty.
	RenamePrefix string

	// OffsetsTopic is the mirror's offsets topic on the target. When set,
	// each source partition is compared up to its mirrored position (a
	// live source runs ahead of its mirror); a partition without a
	// position must have an empty target. When empty, source and target
	// are compared whole, each up to its last stable offset: for a
	// stopped mirror of a stopped source. The default value is empty.
	OffsetsTopic string

	// MaxDifferences bounds the differences reported per partition. The
	// default value is 10.
	MaxDifferences int

	// Timeout bounds each topic's reads. The default value is 1 minute.
	Timeout time.Duration
}

// DifferenceKind says how a target record differs from its source.
type DifferenceKind string

// The kinds of difference.
const (
	Missing  DifferenceKind = "missing"  // a source record has no copy
	Extra    DifferenceKind = "extra"    // a target record has no source
	Mismatch DifferenceKind = "mismatch" // the copy differs: key, value, headers or timestamp
)

// Difference is one record that is not mirrored exactly.
type Difference struct {
	Kind DifferenceKind
	// Index is the record's position among the partition's committed
	// records (0 first).
	Index int
	// SourceOffset and TargetOffset are the offsets compared, -1 when
	// there is no record on that side.
	SourceOffset, TargetOffset int64
	Detail                     string
}

// PartitionReport is the comparison of one partition.
type PartitionReport struct {
	Topic       string // the source topic
	TargetTopic string
	Partition   int32
	// Position is the mirrored position compared up to, -1 when the
	// topics were compared whole or no position was stored.
	Position      int64
	SourceRecords int
	TargetRecords int
	// Differences holds at most MaxDifferences; Count counts them all.
	Differences []Difference
	Count       int
}

// Report is Verify's result, partitions sorted by topic and partition.
type Report struct {
	Partitions []PartitionReport
}

// Differences returns the number of differences found.
func (r *Report) Differences() int {
	n := 0
	for _, p := range r.Partitions {
		n += p.Count
	}
	return n
}

// WriteTo writes the report as text.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, p := range r.Partitions {
		fmt.Fprintf(&b, "%s/%d -> %s/%d: %d source records, %d target records, position %d, %d differences\n",
			p.Topic, p.Partition, p.TargetTopic, p.Partition, p.SourceRecords, p.TargetRecords, p.Position, p.Count)
		for _, d := range p.Differences {
			fmt.Fprintf(&b, "  %s at record %d (source offset %d, target offset %d): %s\n", d.Kind, d.Index, d.SourceOffset, d.TargetOffset, d.Detail)
		}
	}
	fmt.Fprintf(&b, "%d differences\n", r.Differences())
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// Verify compares topics on the source with their copies on the target,
// partition by partition, reading both sides with read_committed: the same
// records in the same order, with the same keys, values, headers and
// timestamps, nothing missing and nothing extra. A read that cannot finish
// is an error, not a difference.
//
// With OffsetsTopic set it also holds on a mirror that is copying: the
// positions are read before and after the target, so every record the
// target shows was committed with a position at most the later one, and
// every record below the earlier one must be there.
func Verify(ctx context.Context, source, target *kgo.Client, topics []string, opts VerifyOptions) (*Report, error) {
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	r := &Report{}
	for _, t := range topics {
		parts, err := verifyTopic(ctx, source, target, t, opts)
		if err != nil {
			return nil, err
		}
		r.Partitions = append(r.Partitions, parts...)
	}
	return r, nil
}

func verifyTopic(ctx context.Context, source, target *kgo.Client, topic string, opts VerifyOptions) ([]PartitionReport, error) {
	var before, after map[int32]int64
	positions := func() (map[int32]int64, error) {
		if opts.OffsetsTopic == "" {
			return nil, nil
		}
		pos, err := ReadPositions(ctx, target, opts.OffsetsTopic, opts.Timeout)
		return pos[topic], err
	}
	var err error
	if before, err = positions(); err != nil {
		return nil, err
	}
	tt := opts.RenamePrefix + topic
	tgt, err := exactlytest.ReadCommitted(ctx, target, tt, exactlytest.ReadOptions{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("reading target topic %s: %w", tt, err)
	}
	if after, err = positions(); err != nil {
		return nil, err
	}
	// Read last, the source holds every record the target can show.
	src, err := exactlytest.ReadCommitted(ctx, source, topic, exactlytest.ReadOptions{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("reading source topic %s: %w", topic, err)
	}
	all := make(map[int32]bool)
	for p := range src {
		all[p] = true
	}
	for p := range tgt {
		all[p] = true
	}
	var out []PartitionReport
	for _, p := range slices.Sorted(maps.Keys(all)) {
		pr := PartitionReport{Topic: topic, TargetTopic: tt, Partition: p, Position: -1}
		lo, hi := len(src[p]), len(src[p])
		if opts.OffsetsTopic != "" {
			lo, hi = below(src[p], before, p), below(src[p], after, p)
			if pos, ok := after[p]; ok {
				pr.Position = pos
			}
		}
		comparePartition(&pr, src[p], tgt[p], lo, hi, opts.MaxDifferences)
		out = append(out, pr)
	}
	return out, nil
}

// below counts the records of recs under partition p's position in pos
// (none when it has no position).
func below(recs []*kgo.Record, pos map[int32]int64, p int32) int {
	at, ok := pos[p]
	if !ok {
		return 0
	}
	n, _ := slices.BinarySearchFunc(recs, at, func(r *kgo.Record, off int64) int {
		return cmp.Compare(r.Offset, off)
	})
	return n
}

// comparePartition compares a partition's target records with the
// source's, in order: the target must hold at least the first lo source
// records and at most the first hi, each equal to its source.
func comparePartition(pr *PartitionReport, src, tgt []*kgo.Record, lo, hi, maxDiffs int) {
	pr.SourceRecords, pr.TargetRecords = hi, len(tgt)
	add := func(d Difference) {
		pr.Count++
		if len(pr.Differences) < maxDiffs {
			pr.Differences = append(pr.Differences, d)
		}
	}
	for i := 0; i < max(lo, len(tgt)); i++ {
		switch {
		case i >= len(tgt):
			add(Difference{Kind: Missing, Index: i, SourceOffset: src[i].Offset, TargetOffset: -1, Detail: "no copy of key " + quote(src[i].Key)})
		case i >= hi:
			add(Difference{Kind: Extra, Index: i, SourceOffset: -1, TargetOffset: tgt[i].Offset, Detail: "beyond the mirrored source records: key " + quote(tgt[i].Key)})
		default:
			if detail := recordDiff(src[i], tgt[i]); detail != "" {
				add(Difference{Kind: Mismatch, Index: i, SourceOffset: src[i].Offset, TargetOffset: tgt[i].Offset, Detail: detail})
			}
		}
	}
}

// recordDiff says how b differs from a, or returns "".
func recordDiff(a, b *kgo.Record) string {
	switch {
	case !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil):
		return fmt.Sprintf("key %s, copy has %s", quote(a.Key), quote(b.Key))
	case !bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil):
		return fmt.Sprintf("value of key %s differs (%d bytes, copy %d)", quote(a.Key), len(a.Value), len(b.Value))
	case !a.Timestamp.Equal(b.Timestamp):
		return fmt.Sprintf("timestamp of key %s is %s, copy has %s", quote(a.Key), a.Timestamp.UTC().Format(time.RFC3339Nano), b.Timestamp.UTC().Format(time.RFC3339Nano))
	case !slices.EqualFunc(a.Headers, b.Headers, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }):
		return fmt.Sprintf("headers of key %s differ (%d, copy %d)", quote(a.Key), len(a.Headers), len(b.Headers))
	}
	return ""
}

func quote(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}
