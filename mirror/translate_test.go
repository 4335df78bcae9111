package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// syncCopier copies source partitions to the target the way the mirror's
// contract says, one target transaction per call, each holding the copies
// and a position record with its sync point: for the translation tests
// that need a layout known offset by offset.
type syncCopier struct {
	c    *clusters
	prod *kgo.Client
	next map[int32]int64 // next source offset to copy, per partition
}

func newSyncCopier(t *testing.T, c *clusters) *syncCopier {
	t.Helper()
	mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "compact")
	return &syncCopier{c: c, prod: newClient(t, c.tgt, kgo.TransactionalID("copier"), manual), next: make(map[int32]int64)}
}

// manual makes a client produce to each record's Partition.
var manual = kgo.RecordPartitioner(kgo.ManualPartitioner())

// copy copies the committed records of partition p below the source's last
// stable offset in one transaction, with the sync point (previous
// position, target end offset before the copies).
func (sc *syncCopier) copy(t *testing.T, topic string, p int32) {
	t.Helper()
	sc.copyWithSync(t, topic, p, nil, true)
}

// copyWithSync is copy with the sync point s instead (none when s is nil
// and computed is false).
func (sc *syncCopier) copyWithSync(t *testing.T, topic string, p int32, s *Sync, computed bool) {
	t.Helper()
	ctx := ctxT(t)
	lso, err := exactlytest.StableOffsets(ctx, sc.c.srcAdm, topic)
	require.NoError(t, err)
	recs, err := exactlytest.ReadCommitted(ctx, sc.c.srcCl, topic, exactlytest.ReadOptions{
		Partitions: []int32{p}, From: map[int32]int64{p: sc.next[p]}, Ends: map[int32]int64{p: lso[p]}})
	require.NoError(t, err)
	ends, err := exactlytest.EndOffsets(ctx, sc.c.tgtAdm, topic)
	require.NoError(t, err)
	require.NoError(t, sc.prod.BeginTransaction())
	for _, r := range recs[p] {
		cp := &kgo.Record{Topic: topic, Partition: p, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		require.NoError(t, sc.prod.ProduceSync(ctx, cp).FirstErr())
	}
	if computed {
		s = &Sync{sc.next[p], ends[p]}
	}
	pos := positionRecord("mm-mirror-offsets", 1, tp{topic, p}, lso[p], Sync{}, "copier")
	pos.Headers = slices.DeleteFunc(pos.Headers, func(h kgo.RecordHeader) bool { return h.Key == headerSync })
	if s != nil {
		pos.Headers = append(pos.Headers, kgo.RecordHeader{Key: headerSync, Value: []byte(s.String())})
	}
	require.NoError(t, sc.prod.ProduceSync(ctx, pos).FirstErr())
	require.NoError(t, sc.prod.EndTransaction(ctx, kgo.TryCommit))
	sc.next[p] = lso[p]
}

// abortOnTarget leaves an aborted record in the target partition, as a
// mirror transaction that failed does: target offsets move, data does not.
func (sc *syncCopier) abortOnTarget(t *testing.T, topic string, p int32) {
	t.Helper()
	require.NoError(t, sc.prod.BeginTransaction())
	require.NoError(t, sc.prod.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Partition: p, Key: []byte("aborted-copy")}).FirstErr())
	require.NoError(t, sc.prod.EndTransaction(ctxT(t), kgo.TryAbort))
}

// commitSource commits offsets for group on the source, as a consumer
// that stopped there would.
func commitSource(t *testing.T, c *clusters, group, topic string, offsets map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for p, o := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	require.NoError(t, c.srcAdm.CommitAllOffsets(ctxT(t), group, os))
}

// The translated offsets of a layout known offset by offset. Source
// partition 0: committed 3 records (offsets 0-2, marker 3), aborted 2
// (4-5, marker 6), committed 2 (7-8, marker 9). Target: an aborted copy
// (0, marker 1), then the copies 0,1,2,7,8 at 2-6 (marker 7), sync point
// (0, 2). A committed source offset O resumes on the target after the
// copy of the last record below O, so each expectation below is off by
// one if the count is.
func TestTranslateExactOffsets(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 1)
	mkTopic(t, c.tgtAdm, "events", 1)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "a", 3, true, time.Now())
	produceTxn(t, p, "events", "x", 2, false, time.Now())
	produceTxn(t, p, "events", "b", 2, true, time.Now())
	sc := newSyncCopier(t, c)
	sc.abortOnTarget(t, "events", 0)
	sc.copy(t, "events", 0)

	for _, tc := range []struct {
		source, target, records int64
	}{
		{0, 2, 0},  // the sync point itself
		{1, 3, 1},  // after a-0
		{3, 5, 3},  // at a's commit marker: after a-2
		{4, 5, 3},  // inside the aborted transaction
		{7, 5, 3},  // at b-0, after the abort marker
		{8, 6, 4},  // after b-0
		{9, 7, 5},  // at b's marker
		{10, 7, 5}, // the position: everything copied
	} {
		t.Run(fmt.Sprint(tc.source), func(t *testing.T) {
			group := fmt.Sprintf("g%d", tc.source)
			commitSource(t, c, group, "events", map[int32]int64{0: tc.source})
			tr, err := TranslateGroup(ctxT(t), c.srcCl, c.tgtCl, "mm", group, TranslateOptions{Timeout: 10 * time.Second})
			require.NoError(t, err)
			require.Len(t, tr.Partitions, 1)
			pt := tr.Partitions[0]
			require.Equal(t, Translated, pt.Status, pt.Detail)
			require.Equal(t, Sync{0, 2}, pt.Sync)
			require.Equal(t, tc.records, pt.Records)
			require.Equal(t, tc.target, pt.TargetOffset)
		})
	}
}

// What cannot be translated exactly is reported, never guessed: an offset
// beyond the mirrored position, a partition without a position, a sync
// point above the offset, records deleted after the sync point, and a
// target written by someone else; a partition without a commit is only
// noted.
func TestTranslateReportsUntranslatable(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 6)
	mkTopic(t, c.tgtAdm, "events", 6)
	p := newClient(t, c.src, kgo.TransactionalID("src-txn"), manual)
	sc := newSyncCopier(t, c)
	for part := range int32(6) {
		produceTo(t, p, "events", part, "a", 4) // offsets 0-3, marker 4
	}
	// 0: committed beyond the position.
	sc.copy(t, "events", 0)
	produceTo(t, p, "events", 0, "more", 2)
	// 1: no position.
	// 2: the only sync point is above the committed offset.
	sc.copyWithSync(t, "events", 2, nil, false)
	produceTo(t, p, "events", 2, "b", 4)
	sc.copy(t, "events", 2)
	// 3: source records deleted after the sync point.
	sc.copy(t, "events", 3)
	_, err := c.srcAdm.DeleteRecords(ctxT(t), kadm.Offsets{"events": {3: {Topic: "events", Partition: 3, At: 2}}})
	require.NoError(t, err)
	// 4: a stray record on the target after a sync point, as if written
	// while the mirror took it.
	sc.copy(t, "events", 4)
	tgtP := newClient(t, c.tgt, manual)
	require.NoError(t, tgtP.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Partition: 4, Key: []byte("stray")}).FirstErr())
	produceTo(t, p, "events", 4, "c", 2)
	sc.copyWithSync(t, "events", 4, &Sync{5, 5}, false)
	// 5: no commit.
	commitSource(t, c, "app", "events", map[int32]int64{0: 7, 1: 2, 2: 3, 3: 3, 4: 7})

	tr, err := TranslateGroup(ctxT(t), c.srcCl, c.tgtCl, "mm", "app", TranslateOptions{Timeout: 10 * time.Second})
	require.NoError(t, err)
	var got []string
	for _, pt := range tr.Partitions {
		got = append(got, fmt.Sprintf("%d %s", pt.Partition, pt.Status))
		if pt.Status != Translated {
			require.EqualValues(t, -1, pt.TargetOffset)
		}
	}
	require.Equal(t, []string{"0 not-yet-mirrored", "1 not-yet-mirrored", "2 no-sync-point", "3 records-deleted", "4 inconsistent", "5 no-commit"}, got)
	require.Len(t, tr.Untranslatable(), 5)
	var out strings.Builder
	_, err = tr.WriteTo(&out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "mirrored up to 5")
	require.Contains(t, out.String(), "5 of 6 partitions not translatable")

	_, err = CommitTranslation(ctxT(t), c.tgtCl, "app", tr, CommitOptions{Force: true})
	require.ErrorIs(t, err, ErrUntranslatable)
	require.ErrorContains(t, err, "events/0 (not-yet-mirrored)")
	offs, err := committedOffsets(ctxT(t), c.tgtAdm, "app")
	require.NoError(t, err)
	require.Empty(t, offs, "nothing committed")
}

// produceTo writes n committed records to one partition in one source
// transaction.
func produceTo(t *testing.T, cl *kgo.Client, topic string, p int32, prefix string, n int) {
	t.Helper()
	require.NoError(t, cl.BeginTransaction())
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "%s-%d", prefix, i)}
		require.NoError(t, cl.ProduceSync(ctxT(t), r).FirstErr())
	}
	require.NoError(t, cl.EndTransaction(ctxT(t), kgo.TryCommit))
}

// A consumer that stops on the source and resumes on the target at the
// translated offsets reads exactly the records it had not consumed, same
// keys, values and order: nothing lost, nothing repeated. The source mixes
// committed, aborted and plain records so source and target offsets
// differ, and the mirror copies them in many transactions while they are
// written, so there are many sync points. A translated offset is committed
// only into an inactive target group, and never backwards unless forced;
// an offset beyond what the mirror copied is reported, never committed.
func TestTranslateFailover(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 3)
	run := start(t, c.newMirror(t, "a"))
	p := c.producer(t, "src-txn")
	plain := c.producer(t, "")
	for i := range 6 {
		produceTxn(t, p, "events", fmt.Sprintf("ok%d", i), 12, true, time.Now())
		produceTxn(t, p, "events", fmt.Sprintf("bad%d", i), 5, false, time.Now())
		require.NoError(t, plain.ProduceSync(ctxT(t), &kgo.Record{Key: fmt.Appendf(nil, "plain%d", i)}).FirstErr())
		// Copied before the next records come: they go in other transactions.
		require.Eventually(t, func() bool { return run.m.Stats().RecordsCopied == int64(13*(i+1)) }, 20*time.Second, 10*time.Millisecond)
	}
	c.waitMirrored(t, []string{"events"}, 20*time.Second)
	require.NoError(t, run.stop(t))

	// The source consumer reads everything, but commits only half of
	// partition 0 and a third of partition 1 before it stops; partition 2's
	// reads are never committed.
	consumed := byPartition(consumeSource(t, c, "app", "events", 78))
	commit := []*kgo.Record{consumed[0][len(consumed[0])/2-1], consumed[1][len(consumed[1])/3-1]}
	srcApp := newClient(t, c.src, kgo.ConsumerGroup("app"), kgo.ConsumeTopics("events"))
	require.NoError(t, srcApp.CommitRecords(ctxT(t), commit...))
	srcApp.Close()

	tr, err := TranslateGroup(ctxT(t), c.srcCl, c.tgtCl, "mm", "app", TranslateOptions{Timeout: 10 * time.Second})
	require.NoError(t, err)
	var out strings.Builder
	_, _ = tr.WriteTo(&out)
	require.Empty(t, tr.Untranslatable(), out.String())
	require.Len(t, tr.Partitions, 3)
	require.Equal(t, NoCommit, tr.Partitions[2].Status)
	for _, pt := range tr.Partitions[:2] {
		require.Equal(t, Translated, pt.Status)
		require.NotEqual(t, pt.SourceOffset, pt.TargetOffset, "offsets differ, or the test proves little")
	}

	committed, err := CommitTranslation(ctxT(t), c.tgtCl, "app", tr, CommitOptions{})
	require.NoError(t, err)
	require.Len(t, committed, 2)

	// What the target consumer must read: every committed source record at
	// or after the committed offsets, from the start of partition 2.
	src, err := exactlytest.ReadCommitted(ctxT(t), c.srcCl, "events", exactlytest.ReadOptions{})
	require.NoError(t, err)
	want := map[int32][]string{}
	for part, recs := range src {
		from := int64(0)
		if part != 2 {
			from = tr.Partitions[part].SourceOffset
		}
		for _, r := range recs {
			if r.Offset >= from {
				want[part] = append(want[part], string(r.Key)+"="+string(r.Value))
			}
		}
	}
	tgtApp := newClient(t, c.tgt, kgo.ConsumerGroup("app"), kgo.ConsumeTopics("events"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, tgtApp, total(want))
	require.Equal(t, want, keyValues(got), "the target consumer reads exactly what the source consumer had left")

	// The group is active on the target: refused.
	_, err = CommitTranslation(ctxT(t), c.tgtCl, "app", tr, CommitOptions{})
	require.ErrorIs(t, err, ErrTargetGroupActive)
	require.NoError(t, tgtApp.CommitRecords(ctxT(t), got...))
	tgtApp.Close()

	// The group moved on: the translation would move it back.
	_, err = CommitTranslation(ctxT(t), c.tgtCl, "app", tr, CommitOptions{})
	require.ErrorIs(t, err, ErrOffsetBackwards)
	committed, err = CommitTranslation(ctxT(t), c.tgtCl, "app", tr, CommitOptions{Force: true})
	require.NoError(t, err)
	for _, co := range committed {
		require.Greater(t, co.Previous, co.Committed)
	}
	offs, err := committedOffsets(ctxT(t), c.tgtAdm, "app")
	require.NoError(t, err)
	require.Equal(t, tr.Partitions[0].TargetOffset, offs["events"][0])

	// With the mirror stopped, a group reads on to the source's end.
	produceTxn(t, p, "events", "late", 10, true, time.Now())
	late := byPartition(consumeSource(t, c, "late", "events", 78+10))
	lateApp := newClient(t, c.src, kgo.ConsumerGroup("late"), kgo.ConsumeTopics("events"))
	require.NoError(t, lateApp.CommitRecords(ctxT(t), late[0][len(late[0])-1], late[1][len(late[1])-1], late[2][len(late[2])-1]))
	lateApp.Close()
	tr, err = TranslateGroup(ctxT(t), c.srcCl, c.tgtCl, "mm", "late", TranslateOptions{Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.NotEmpty(t, tr.Untranslatable())
	for _, pt := range tr.Untranslatable() {
		require.Equal(t, NotYetMirrored, pt.Status)
		require.Greater(t, pt.SourceOffset, pt.Position)
	}
	_, err = CommitTranslation(ctxT(t), c.tgtCl, "late", tr, CommitOptions{})
	require.ErrorIs(t, err, ErrUntranslatable)
}

// consumeSource reads at least n records of topic as group with
// read_committed, committing nothing, and returns them.
func consumeSource(t *testing.T, c *clusters, group, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, c.src, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	return consumeN(t, cl, n)
}

// consumeN polls cl until it has at least n records, failing after 15 s.
func consumeN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(ctxT(t), 15*time.Second)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", len(out), n)
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetching %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func byPartition(recs []*kgo.Record) map[int32][]*kgo.Record {
	out := map[int32][]*kgo.Record{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func keyValues(recs []*kgo.Record) map[int32][]string {
	out := map[int32][]string{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], string(r.Key)+"="+string(r.Value))
	}
	return out
}

func total(m map[int32][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
