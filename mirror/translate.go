package mirror

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// Consumer-group offset translation, for a consumer that fails over from
// the source cluster to the target.
//
// Target offsets differ from source offsets (aborted records and commit
// markers are not copied, the mirror's own aborted transactions and markers
// take target offsets), so a source group's committed offset means nothing
// on the target. Every position record carries a sync point (S, T): the
// copies of the committed source records at offsets >= S are exactly the
// committed data records of the target partition at offsets >= T, in the
// same order. A group's committed offset O on the source, with a sync point
// S <= O, translates by counting: n committed data records of the source
// lie in [S, O), so the consumer resumes on the target just after the n-th
// committed data record at or after T (at T when n is 0). Nothing is
// guessed: an offset the mirror has not reached, or below every sync point,
// is reported untranslatable, never rounded.

// The errors of CommitTranslation.
var (
	// ErrUntranslatable is wrapped by CommitTranslation's error when a
	// partition with a committed source offset could not be translated:
	// committing the others would leave that partition to the consumer's
	// reset policy, which loses or repeats records.
	ErrUntranslatable = errors.New("mirror: group offsets not translatable")

	// ErrTargetGroupActive is wrapped when the target group has members:
	// their own commits would race the translated ones (MirrorMaker 2's
	// sync.group.offsets.enabled only writes to inactive groups for the
	// same reason).
	ErrTargetGroupActive = errors.New("mirror: target group is active")

	// ErrOffsetBackwards is wrapped when a translated offset is below the
	// target group's committed offset and Force is not set: committing it
	// would make the group read records again.
	ErrOffsetBackwards = errors.New("mirror: translated offset behind the target group's")
)

// TranslateStatus says whether a partition's offset translated.
type TranslateStatus string

// The statuses of a partition's translation.
const (
	// Translated: TargetOffset is where the consumer resumes.
	Translated TranslateStatus = "translated"
	// NoCommit: the group committed no offset for the partition; the
	// consumer's reset policy applies on both clusters alike.
	NoCommit TranslateStatus = "no-commit"
	// NotYetMirrored: the mirror has not copied up to the committed
	// offset (or not this partition at all). Wait and translate again.
	NotYetMirrored TranslateStatus = "not-yet-mirrored"
	// NoSyncPoint: no sync point at or below the committed offset.
	NoSyncPoint TranslateStatus = "no-sync-point"
	// RecordsDeleted: records between the sync point and the committed
	// offset were deleted by retention, on the source or the target, so
	// they cannot be counted.
	RecordsDeleted TranslateStatus = "records-deleted"
	// Inconsistent: the target records after the sync point are not the
	// copies of the source records counted (fewer, or different). Someone
	// other than the mirror wrote the target topic, or compaction removed
	// records on one side.
	Inconsistent TranslateStatus = "inconsistent"
)

// OK reports whether a consumer can move to the target for this
// partition: Translated, or NoCommit.
func (s TranslateStatus) OK() bool { return s == Translated || s == NoCommit }

// TranslateOptions configures TranslateGroup.
type TranslateOptions struct {
	// RenamePrefix is the mirror's rename prefix: source topic t is target
	// topic RenamePrefix+t. The default value is empty.
	RenamePrefix string

	// Topics restricts the translation to these source topics; a topic
	// the group committed nothing for is listed with every partition
	// NoCommit. The default value is nil: every topic the group committed
	// offsets for.
	Topics []string

	// Timeout bounds each read (the offsets topic, each topic on the
	// source, each partition on the target). The default value is 1
	// minute.
	Timeout time.Duration
}

// PartitionTranslation is the translation of one source partition's
// committed offset.
type PartitionTranslation struct {
	Topic       string // the source topic
	TargetTopic string
	Partition   int32
	Status      TranslateStatus
	// SourceOffset is the group's committed offset on the source, -1 if
	// none.
	SourceOffset int64
	// Position is the mirror's next source offset to copy, -1 if none is
	// stored.
	Position int64
	// Sync is the sync point used: the highest stored one at or below
	// SourceOffset (when HasSync).
	Sync    Sync
	HasSync bool
	// Records counts the committed source data records in
	// [Sync.Source, SourceOffset).
	Records int64
	// TargetOffset is where the consumer resumes on the target, -1 unless
	// Translated.
	TargetOffset int64
	// Detail says why a partition is not Translated.
	Detail string
}

// Translation is a source group's committed offsets translated to target
// offsets, partitions sorted by topic and partition.
type Translation struct {
	Group string
	// SourceGroupState is the group's state on the source when its
	// offsets were read ("Empty", "Stable", ...; "" when it is not
	// listed). A group with members may commit newer offsets, which this
	// translation does not include.
	SourceGroupState string
	Partitions       []PartitionTranslation
}

// Untranslatable returns the partitions whose status is not OK.
func (t *Translation) Untranslatable() []PartitionTranslation {
	var out []PartitionTranslation
	for _, p := range t.Partitions {
		if !p.Status.OK() {
			out = append(out, p)
		}
	}
	return out
}

// WriteTo writes the translation as a table.
func (t *Translation) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	state := t.SourceGroupState
	if state == "" {
		state = "not listed"
	}
	fmt.Fprintf(&b, "group %s (on the source: %s)\n", t.Group, state)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSOURCE OFFSET\tPOSITION\tSYNC POINT\tRECORDS\tTARGET TOPIC\tTARGET OFFSET\tSTATUS")
	dash := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return strconv.FormatInt(v, 10)
	}
	for _, p := range t.Partitions {
		sync, recs := "-", "-"
		if p.HasSync {
			sync = fmt.Sprintf("%d->%d", p.Sync.Source, p.Sync.Target)
		}
		if p.Status == Translated || p.Status == Inconsistent {
			recs = strconv.FormatInt(p.Records, 10)
		}
		status := string(p.Status)
		if p.Detail != "" {
			status += ": " + p.Detail
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, dash(p.SourceOffset), dash(p.Position),
			sync, recs, p.TargetTopic, dash(p.TargetOffset), status)
	}
	if err := tw.Flush(); err != nil {
		return 0, err
	}
	switch state {
	case "Empty", "Dead", "not listed":
	default:
		fmt.Fprintf(&b, "warning: group %s has members on the source; offsets it commits after this are not included\n", t.Group)
	}
	if bad := len(t.Untranslatable()); bad > 0 {
		fmt.Fprintf(&b, "%d of %d partitions not translatable\n", bad, len(t.Partitions))
	} else {
		fmt.Fprintf(&b, "%d partitions translatable\n", len(t.Partitions))
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// TranslateGroup translates the offsets group committed on the source
// cluster into offsets on the target cluster, through the sync points
// kept by the mirror called name (in <name>-mirror-offsets on the target).
//
// The guarantee: a consumer of a translated partition that resumes on the
// target at TargetOffset, reading with read_committed, reads exactly the
// copies of the source records at and after SourceOffset, in order:
// nothing lost, nothing repeated. It assumes that only the mirror writes
// the target topics, that the records between the sync point and the
// committed offset still exist on both sides (not deleted by retention or
// compaction: a deleted prefix is detected and reported, a compacted gap
// almost always shows as Inconsistent), and that the group's offsets do
// not move while translating: translate a stopped group (a live group's
// later commits are simply not included; SourceGroupState tells).
//
// Every record counted on the source is compared (key, value and headers,
// through a running hash) with its copy on the target, so a
// translation that returns Translated has checked its own count.
func TranslateGroup(ctx context.Context, source, target *kgo.Client, name, group string, opts TranslateOptions) (*Translation, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	srcAdm := kadm.NewClient(source)
	tr := &Translation{Group: group}
	committed, err := committedOffsets(ctx, srcAdm, group)
	if err != nil {
		return nil, err
	}
	topics := opts.Topics
	if topics == nil {
		if len(committed) == 0 {
			return nil, fmt.Errorf("mirror: source group %s has no committed offsets", group)
		}
		topics = slices.Sorted(maps.Keys(committed))
	}
	if tr.SourceGroupState, err = groupState(ctx, srcAdm, group); err != nil {
		return nil, fmt.Errorf("listing groups on the source: %w", err)
	}
	hist, err := readSyncHistory(ctx, target, name+"-mirror-offsets", opts.Timeout)
	if err != nil {
		return nil, err
	}
	for _, topic := range topics {
		tt := &topicTranslation{topic: topic, target: opts.RenamePrefix + topic, timeout: opts.Timeout}
		parts, err := tt.run(ctx, source, target, committed[topic], hist)
		if err != nil {
			return nil, err
		}
		tr.Partitions = append(tr.Partitions, parts...)
	}
	return tr, nil
}

// committedOffsets returns group's committed offsets (topic -> partition
// -> offset), leaving out partitions without one. A group that does not
// exist has none.
func committedOffsets(ctx context.Context, adm *kadm.Client, group string) (map[string]map[int32]int64, error) {
	out := make(map[string]map[int32]int64)
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", group, err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.At < 0 {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// groupState returns group's state, "" when the cluster does not list it.
func groupState(ctx context.Context, adm *kadm.Client, group string) (string, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return "", err
	}
	return listed[group].State, nil
}

// syncHistory is what the offsets topic holds for one source partition:
// the latest position and every sync point still stored (compaction keeps
// only the latest, eventually), sorted by source offset.
type syncHistory struct {
	next  int64
	syncs []Sync
}

// readSyncHistory reads the offsets topic like ReadPositionDetails, keeping
// every sync point seen, not only the latest: a sync point stays true once
// written, and a lagging group needs one below its offset.
func readSyncHistory(ctx context.Context, target *kgo.Client, offsetsTopic string, timeout time.Duration) (map[tp]*syncHistory, error) {
	out := make(map[tp]*syncHistory)
	ends, err := kadm.NewClient(target).ListEndOffsets(ctx, offsetsTopic)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", offsetsTopic, err)
	}
	hwm := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			hwm[o.Partition] = o.Offset
		}
	})
	if len(hwm) == 0 {
		return out, nil // no offsets topic: nothing mirrored
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", offsetsTopic, err)
	}
	err = exactlytest.ReadCommittedFunc(ctx, target, offsetsTopic, exactlytest.ReadOptions{Ends: hwm, Timeout: timeout}, func(r *kgo.Record) error {
		t, ok := parsePositionKey(r.Key)
		if !ok {
			return nil
		}
		next, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			return nil
		}
		h := out[t]
		if h == nil {
			h = &syncHistory{}
			out[t] = h
		}
		h.next = next
		if s, ok := syncOf(r); ok && s.Source <= next {
			h.syncs = append(h.syncs, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading sync points from %s: %w", offsetsTopic, err)
	}
	for _, h := range out {
		slices.SortFunc(h.syncs, func(a, b Sync) int { return cmp.Compare(a.Source, b.Source) })
	}
	return out, nil
}

// syncOf returns r's sync point.
func syncOf(r *kgo.Record) (Sync, bool) {
	for _, h := range r.Headers {
		if h.Key == headerSync {
			return parseSync(h.Value)
		}
	}
	return Sync{}, false
}

// best returns the sync point with the highest source offset at or below
// o.
func (h *syncHistory) best(o int64) (Sync, bool) {
	var best Sync
	found := false
	for _, s := range h.syncs {
		if s.Source <= o && (!found || s.Source >= best.Source) {
			best, found = s, true
		}
	}
	return best, found
}

// topicTranslation translates one source topic's partitions.
type topicTranslation struct {
	topic, target string
	timeout       time.Duration
	parts         []PartitionTranslation
	counts        map[int32]*recordCount // of partitions to count
}

// recordCount is the committed data records counted in a range, and their
// running hash.
type recordCount struct {
	n int64
	h hash.Hash64
}

func (c *recordCount) add(r *kgo.Record) {
	c.n++
	hashRecord(c.h, r)
}

// hashRecord feeds r's key, value and headers to h, length-prefixed (a
// null key or value apart from an empty one). Not the timestamp: a target
// topic with message.timestamp.type=LogAppendTime stamps its own.
func hashRecord(h hash.Hash64, r *kgo.Record) {
	bs := func(b []byte) {
		n := int64(len(b))
		if b == nil {
			n = -1
		}
		_ = binary.Write(h, binary.BigEndian, n)
		h.Write(b)
	}
	bs(r.Key)
	bs(r.Value)
	_ = binary.Write(h, binary.BigEndian, int64(len(r.Headers)))
	for _, hd := range r.Headers {
		bs([]byte(hd.Key))
		bs(hd.Value)
	}
}

func (tt *topicTranslation) run(ctx context.Context, source, target *kgo.Client, committed map[int32]int64, hist map[tp]*syncHistory) ([]PartitionTranslation, error) {
	srcStarts, err := startOffsets(ctx, source, tt.topic, true)
	if err != nil {
		return nil, fmt.Errorf("source topic %s: %w", tt.topic, err)
	}
	tgtStarts, err := startOffsets(ctx, target, tt.target, false)
	if err != nil {
		return nil, fmt.Errorf("target topic %s: %w", tt.target, err)
	}
	tt.counts = make(map[int32]*recordCount)
	for _, p := range slices.Sorted(maps.Keys(srcStarts)) {
		o, ok := committed[p]
		if !ok {
			o = -1
		}
		tt.classify(p, o, hist[tp{tt.topic, p}], srcStarts[p], tgtStarts)
	}
	if err := tt.countSource(ctx, source); err != nil {
		return nil, err
	}
	for i := range tt.parts {
		pt := &tt.parts[i]
		switch {
		case pt.Status != Translated || pt.TargetOffset >= 0:
		case pt.Records == 0:
			pt.TargetOffset = pt.Sync.Target
		default:
			if err := tt.findTarget(ctx, target, pt); err != nil {
				return nil, err
			}
		}
	}
	return tt.parts, nil
}

// startOffsets returns topic's log start offsets; a missing target topic
// is no partitions, a missing source topic an error.
func startOffsets(ctx context.Context, cl *kgo.Client, topic string, required bool) (map[int32]int64, error) {
	listed, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err == nil && !required {
		if _, ok := listed.Lookup(topic, -1); ok {
			return map[int32]int64{}, nil
		}
	}
	if err := exactlytest.ListErr(listed, err); err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// classify decides what can be said of partition p without reading
// records, and plans the source count of the partitions that translate.
func (tt *topicTranslation) classify(p int32, o int64, h *syncHistory, srcStart int64, tgtStarts map[int32]int64) {
	pt := PartitionTranslation{Topic: tt.topic, TargetTopic: tt.target, Partition: p, SourceOffset: o, Position: -1, TargetOffset: -1}
	if h != nil {
		pt.Position = h.next
	}
	tgtStart, tgtExists := tgtStarts[p]
	switch {
	case o < 0:
		pt.Status = NoCommit
	case h == nil:
		pt.Status, pt.Detail = NotYetMirrored, "no mirrored position"
	case o > h.next:
		pt.Status, pt.Detail = NotYetMirrored, fmt.Sprintf("mirrored up to %d", h.next)
	default:
		pt.Sync, pt.HasSync = h.best(o)
		switch {
		case !pt.HasSync:
			pt.Status = NoSyncPoint
			if len(h.syncs) > 0 {
				pt.Detail = fmt.Sprintf("the lowest stored is at source offset %d", h.syncs[0].Source)
			}
		case pt.Sync.Source < srcStart:
			pt.Status, pt.Detail = RecordsDeleted, fmt.Sprintf("source log starts at %d", srcStart)
		case !tgtExists:
			pt.Status, pt.Detail = Inconsistent, "no target partition"
		case pt.Sync.Target < tgtStart:
			pt.Status, pt.Detail = RecordsDeleted, fmt.Sprintf("target log starts at %d", tgtStart)
		case pt.Sync.Source == o:
			pt.Status, pt.TargetOffset = Translated, pt.Sync.Target
		default:
			pt.Status = Translated // once counted
			tt.counts[p] = &recordCount{h: fnv.New64a()}
		}
	}
	tt.parts = append(tt.parts, pt)
}

// countSource counts, in one read of the source topic, the committed data
// records in [S, O) of every partition planned.
func (tt *topicTranslation) countSource(ctx context.Context, source *kgo.Client) error {
	if len(tt.counts) == 0 {
		return nil
	}
	from, ends := make(map[int32]int64), make(map[int32]int64)
	for _, pt := range tt.parts {
		if _, ok := tt.counts[pt.Partition]; ok {
			from[pt.Partition], ends[pt.Partition] = pt.Sync.Source, pt.SourceOffset
		}
	}
	err := exactlytest.ReadCommittedFunc(ctx, source, tt.topic, exactlytest.ReadOptions{From: from, Ends: ends, Timeout: tt.timeout}, func(r *kgo.Record) error {
		tt.counts[r.Partition].add(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("counting source records of %s: %w", tt.topic, err)
	}
	for i := range tt.parts {
		if c, ok := tt.counts[tt.parts[i].Partition]; ok {
			tt.parts[i].Records = c.n
		}
	}
	return nil
}

// errCounted stops a target read at the n-th record.
var errCounted = errors.New("counted")

// findTarget reads pt's target partition from the sync point's target
// offset up to the copy of the last record counted on the source, and
// checks that the copies are the records counted.
func (tt *topicTranslation) findTarget(ctx context.Context, target *kgo.Client, pt *PartitionTranslation) error {
	want := tt.counts[pt.Partition]
	got := &recordCount{h: fnv.New64a()}
	last := int64(-1)
	opts := exactlytest.ReadOptions{Partitions: []int32{pt.Partition}, From: map[int32]int64{pt.Partition: pt.Sync.Target}, Timeout: tt.timeout}
	err := exactlytest.ReadCommittedFunc(ctx, target, tt.target, opts, func(r *kgo.Record) error {
		got.add(r)
		last = r.Offset
		if got.n == want.n {
			return errCounted
		}
		return nil
	})
	if err != nil && !errors.Is(err, errCounted) {
		return fmt.Errorf("reading target partition %s/%d: %w", tt.target, pt.Partition, err)
	}
	switch {
	case got.n < want.n:
		pt.Status, pt.Detail = Inconsistent, fmt.Sprintf("the target holds %d of the %d copies after the sync point", got.n, want.n)
	case got.h.Sum64() != want.h.Sum64():
		pt.Status, pt.Detail = Inconsistent, "the target records after the sync point are not the copies of the source records counted"
	default:
		pt.TargetOffset = last + 1
	}
	return nil
}

// CommitOptions configures CommitTranslation.
type CommitOptions struct {
	// Force commits a translated offset even when it is below the target
	// group's committed offset (the group then reads records again). The
	// default value is false: such a commit is refused.
	Force bool
}

// CommittedOffset is one offset CommitTranslation committed.
type CommittedOffset struct {
	Topic     string // the target topic
	Partition int32
	// Previous is the target group's committed offset before, -1 if none.
	Previous  int64
	Committed int64
}

// CommitTranslation commits tr's translated offsets into group on the
// target cluster. It commits nothing, and returns an error wrapping
//   - ErrUntranslatable if a partition of tr is not OK,
//   - ErrTargetGroupActive if group has members on the target (listed in a
//     state other than Empty or Dead),
//   - ErrOffsetBackwards if a translated offset is below the group's
//     committed offset and opts.Force is not set.
//
// The member check and the commit are two requests; a consumer that joins
// in between makes the broker refuse the commit (an offset commit without
// a member is accepted only by an empty group).
func CommitTranslation(ctx context.Context, target *kgo.Client, group string, tr *Translation, opts CommitOptions) ([]CommittedOffset, error) {
	if bad := tr.Untranslatable(); len(bad) > 0 {
		var names []string
		for _, p := range bad {
			names = append(names, fmt.Sprintf("%s/%d (%s)", p.Topic, p.Partition, p.Status))
		}
		return nil, fmt.Errorf("%w: group %s: %s", ErrUntranslatable, tr.Group, strings.Join(names, ", "))
	}
	adm := kadm.NewClient(target)
	state, err := groupState(ctx, adm, group)
	if err != nil {
		return nil, fmt.Errorf("listing groups on the target: %w", err)
	}
	if state != "" && state != "Empty" && state != "Dead" {
		return nil, fmt.Errorf("%w: group %s is %s on the target; stop its consumers first", ErrTargetGroupActive, group, state)
	}
	prev, err := committedOffsets(ctx, adm, group)
	if err != nil {
		return nil, fmt.Errorf("on the target: %w", err)
	}
	var out []CommittedOffset
	var behind []string
	offs := make(kadm.Offsets)
	for _, p := range tr.Partitions {
		if p.Status != Translated {
			continue
		}
		c := CommittedOffset{Topic: p.TargetTopic, Partition: p.Partition, Previous: -1, Committed: p.TargetOffset}
		if at, ok := prev[p.TargetTopic][p.Partition]; ok {
			c.Previous = at
		}
		if c.Previous > c.Committed && !opts.Force {
			behind = append(behind, fmt.Sprintf("%s/%d (%d, committed %d)", c.Topic, c.Partition, c.Committed, c.Previous))
		}
		offs.Add(kadm.Offset{Topic: c.Topic, Partition: c.Partition, At: c.Committed, LeaderEpoch: -1,
			Metadata: fmt.Sprintf("exactly mirror translate: source offset %d", p.SourceOffset)})
		out = append(out, c)
	}
	if len(behind) > 0 {
		return nil, fmt.Errorf("%w: group %s: %s; force to commit anyway", ErrOffsetBackwards, group, strings.Join(behind, ", "))
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
		return nil, fmt.Errorf("committing the translated offsets of group %s on the target: %w", group, err)
	}
	return out, nil
}
