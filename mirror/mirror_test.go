package mirror

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// Aborted source transactions are never copied, committed ones exactly
// once; keys, values (a null one too), headers, timestamps and partitions
// are kept, and the target topic takes the source's partition count and
// retention settings.
func TestCopyCommittedOnlyWithFidelity(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 3, "retention.ms", "3600000", "cleanup.policy", "delete")
	p := c.producer(t, "src-txn")
	now := time.Now().Truncate(time.Millisecond)
	produceTxn(t, p, "events", "ok1", 30, true, now)
	produceTxn(t, p, "events", "bad", 30, false, now)
	produceTxn(t, p, "events", "ok2", 30, true, now)
	plain := c.producer(t, "")
	require.NoError(t, plain.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Partition: 0, Key: []byte("tomb"), Value: nil, Timestamp: now}).FirstErr())

	m := c.newMirror(t, "a")
	r := start(t, m)
	rep := c.waitMirrored(t, []string{"events"}, 20*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, 61, src)
	require.Equal(t, 61, tgt)

	recs, err := exactlytest.ReadCommitted(ctxT(t), c.tgtCl, "events", exactlytest.ReadOptions{})
	require.NoError(t, err)
	for _, rec := range exactlytest.Records(recs) {
		require.False(t, bytes.HasPrefix(rec.Key, []byte("bad")), "aborted record %s copied", rec.Key)
		if string(rec.Key) == "tomb" {
			require.Nil(t, rec.Value, "a null value stays null")
		}
	}
	aborted, err := exactlytest.ReadCommitted(ctxT(t), c.tgtCl, "events", exactlytest.ReadOptions{Uncommitted: true})
	require.NoError(t, err)
	for _, rec := range exactlytest.Records(aborted) {
		require.False(t, bytes.HasPrefix(rec.Key, []byte("bad")), "aborted record %s produced to the target at all", rec.Key)
	}

	ds, err := c.tgtAdm.ListTopics(ctxT(t), "events")
	require.NoError(t, err)
	require.Len(t, ds["events"].Partitions, 3)
	rcs, err := c.tgtAdm.DescribeTopicConfigs(ctxT(t), "events")
	require.NoError(t, err)
	rc, err := rcs.On("events", nil)
	require.NoError(t, err)
	var retention string
	for _, cf := range rc.Configs {
		if cf.Key == "retention.ms" {
			retention = cf.MaybeValue()
		}
	}
	require.Equal(t, "3600000", retention)

	st := m.Stats()
	require.EqualValues(t, 61, st.RecordsCopied)
	require.Positive(t, st.BytesCopied)
	require.Positive(t, st.TxnsCommitted)
	require.Len(t, st.Partitions, 3)
	for _, ps := range st.Partitions {
		require.GreaterOrEqual(t, ps.Position, int64(0), "%+v", ps)
	}
	require.NoError(t, r.stop(t))
}

// Records an hour (and two days) old are copied with their timestamps: kgo's
// RecordDeliveryTimeout, counted from the record timestamp, would expire
// them, so the mirror refuses it and bounds delivery by the transaction
// timeout.
func TestOldTimestamps(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "hour", 20, true, time.Now().Add(-time.Hour).Truncate(time.Millisecond))
	produceTxn(t, p, "events", "days", 20, true, time.Now().Add(-48*time.Hour).Truncate(time.Millisecond))
	r := start(t, c.newMirror(t, "a"))
	rep := c.waitMirrored(t, []string{"events"}, 20*time.Second)
	_, tgt := totalRecords(rep)
	require.Equal(t, 40, tgt)
	require.NoError(t, r.stop(t))

	_, err := New("mm", SourceBrokers("x"), TargetBrokers("y"), Topics("t"), TargetOpts(kgo.RecordDeliveryTimeout(time.Minute)))
	require.ErrorIs(t, err, ErrConfig)
}

// A target topic with another partition count is refused at start, and
// the error names the topic.
func TestPartitionCountMismatch(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 3)
	mkTopic(t, c.tgtAdm, "copy.events", 2)
	m := c.newMirror(t, "a", RenamePrefix("copy."))
	err := m.Run(ctxT(t))
	var pm *PartitionMismatchError
	require.ErrorAs(t, err, &pm)
	require.Equal(t, "events", pm.SourceTopic)
	require.Equal(t, "copy.events", pm.TargetTopic)
	require.Contains(t, err.Error(), "copy.events")
	require.Equal(t, 3, pm.SourcePartitions)
	require.Equal(t, 2, pm.TargetPartitions)
}

// A mirror killed mid-transaction (after producing the records, after
// flushing them, or while committing: the transaction stays open on the
// target) and restarted with the same instance ID leaves the target
// exactly equal to the source: the restart fences and aborts the open
// transaction and resumes from the positions committed with the records.
func TestCrashAndRestart(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"produced", "flushed", "committing"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			c := newClusters(t)
			mkTopic(t, c.srcAdm, "events", 3)
			p := c.producer(t, "src-txn")
			for i := range 10 {
				produceTxn(t, p, "events", "k"+string(rune('a'+i)), 40, i%4 != 3, time.Now())
			}
			n := 0
			m := c.newMirror(t, "a", MaxRecordsPerTxn(50))
			m.crash = func(at string) bool {
				if at != point {
					return false
				}
				n++
				return n == 3
			}
			r := start(t, m)
			require.ErrorIs(t, r.wait(t, 20*time.Second), errCrashed)
			require.Positive(t, m.Stats().TxnsCommitted, "some transactions committed before the crash")

			r2 := start(t, c.newMirror(t, "a", MaxRecordsPerTxn(50)))
			rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
			src, tgt := totalRecords(rep)
			require.Equal(t, 10*40-2*40, src)
			require.Equal(t, src, tgt)
			require.NoError(t, r2.stop(t))
		})
	}
}

// Two instances share the work; a second joining and the first leaving
// while records keep arriving move partitions mid-run, and the copy stays
// exact.
func TestTwoInstancesRebalance(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 4)
	p := c.producer(t, "src-txn")
	batch := 0
	produce := func(k int) {
		for range k {
			produceTxn(t, p, "events", "b"+strings.Repeat("x", batch%3)+string(rune('a'+batch%26)), 25, batch%5 != 4, time.Now())
			batch++
		}
	}
	produce(5)
	a := start(t, c.newMirror(t, "a", MaxRecordsPerTxn(20)))
	time.Sleep(300 * time.Millisecond)
	produce(5)
	b := start(t, c.newMirror(t, "b", MaxRecordsPerTxn(20)))
	produce(10)
	// Up to the positions, Verify holds while both instances copy.
	for range 3 {
		rep, err := Verify(ctxT(t), c.srcCl, c.tgtCl, []string{"events"}, VerifyOptions{OffsetsTopic: "mm-mirror-offsets"})
		require.NoError(t, err)
		require.Zero(t, rep.Differences())
		produce(1)
	}
	time.Sleep(200 * time.Millisecond)
	produce(2)
	require.NoError(t, a.stop(t))
	produce(5)
	rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, 30*25-6*25, src)
	require.Equal(t, src, tgt)
	require.NoError(t, b.stop(t))
}

// expelled returns a mirror like newMirror's, in a source group of its
// own: it owns every partition whatever the other instances own, as a
// member the source group expelled without its hearing so believes it
// does (a pause past the session timeout, a cut from the source only).
func (c *clusters) expelled(t *testing.T, id string, opts ...Opt) *Mirror {
	t.Helper()
	m := c.newMirror(t, id, opts...)
	m.cfg.group = "mm-expelled-" + id
	return m
}

// A zombie paused after deciding to commit (a GC pause, a frozen VM) while
// another instance takes its partitions. The other instance's assignment
// initializes the partitions' transactional IDs, which fences the zombie:
// its commit fails, it stops, and the copy is exact. The zombie's instance
// ID is the successor's: instance IDs play no part in fencing.
func TestZombieFenced(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "first", 30, true, time.Now())

	paused, resume := make(chan struct{}), make(chan struct{})
	n := 0
	zombie := c.expelled(t, "a", MaxRecordsPerTxn(10))
	zombie.crash = func(at string) bool {
		if at == "committing" {
			if n++; n == 2 {
				close(paused)
				<-resume
			}
		}
		return false
	}
	z := start(t, zombie)
	<-paused

	succ := c.newMirror(t, "a", MaxRecordsPerTxn(10))
	s := start(t, succ)
	require.Eventually(t, func() bool { return len(succ.Stats().Partitions) == 2 }, 20*time.Second, 10*time.Millisecond,
		"the successor takes both partitions")
	close(resume)
	zerr := z.wait(t, 20*time.Second)
	require.Error(t, zerr)
	// Real Kafka answers the fenced epoch with PRODUCER_FENCED or
	// INVALID_PRODUCER_EPOCH; kfake, whose transaction the successor's
	// InitProducerID already aborted, with INVALID_TXN_STATE. Either way
	// the zombie's commit fails and it stops.
	require.ErrorContains(t, zerr, "committing the target transaction")
	require.True(t, isFenced(zerr) || errors.Is(zerr, kerr.InvalidTxnState), "zombie's error: %v", zerr)

	produceTxn(t, p, "events", "second", 30, true, time.Now())
	rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
	_, tgt := totalRecords(rep)
	require.Equal(t, 60, tgt)
	require.NoError(t, s.stop(t))
}

// An expelled member between transactions: it copied, went quiet, and
// another instance took its partitions without its hearing so. When new
// records arrive, both believe they own the partitions and both try to
// copy them; only the owner's initialization of the partitions' IDs
// counts, so the expelled one's transactions are fenced and it stops,
// and nothing is copied twice. (With one transactional ID per instance,
// the expelled member committed duplicates here.)
func TestExpelledZombieCannotCommit(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 3)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "first", 30, true, time.Now())

	zombie := c.expelled(t, "z")
	z := start(t, zombie)
	c.waitMirrored(t, []string{"events"}, 30*time.Second)

	owner := c.newMirror(t, "o")
	o := start(t, owner)
	require.Eventually(t, func() bool { return len(owner.Stats().Partitions) == 3 }, 20*time.Second, 10*time.Millisecond)

	for i := range 5 {
		produceTxn(t, p, "events", fmt.Sprintf("more%d", i), 20, true, time.Now())
	}
	zerr := z.wait(t, 20*time.Second)
	require.Error(t, zerr, "the expelled member stops once fenced")
	require.ErrorContains(t, zerr, "target transaction of events/")
	rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, 130, src)
	require.Equal(t, 130, tgt, "nothing copied twice")
	require.NoError(t, o.stop(t))
}

// A regex picks up a topic created while the mirror runs.
func TestRegexPicksUpNewTopics(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "app.one", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "app.one", "x", 10, true, time.Now())
	r := start(t, c.newMirror(t, "a", Topics(), TopicsRegex(`^app\.`), RenamePrefix("dc1.")))
	waitTarget(t, c, "dc1.app.one", 10)
	mkTopic(t, c.srcAdm, "app.two", 3)
	produceTxn(t, p, "app.two", "y", 12, true, time.Now())
	waitTarget(t, c, "dc1.app.two", 12)
	rep, err := Verify(ctxT(t), c.srcCl, c.tgtCl, []string{"app.one", "app.two"}, VerifyOptions{RenamePrefix: "dc1.", OffsetsTopic: "mm-mirror-offsets"})
	require.NoError(t, err)
	require.Zero(t, rep.Differences())
	require.NoError(t, r.stop(t))
}

func waitTarget(t *testing.T, c *clusters, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		recs, err := exactlytest.ReadCommitted(ctxT(t), c.tgtCl, topic, exactlytest.ReadOptions{Timeout: 5 * time.Second})
		if err == nil && len(exactlytest.Records(recs)) == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never held %d records", topic, n)
}

// Verify reports a missing, an extra and a changed record.
func TestVerifyFindsDifferences(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 1)
	mkTopic(t, c.tgtAdm, "events", 1)
	ts := time.Now().Truncate(time.Millisecond)
	src, tgt := c.producer(t, ""), newClient(t, c.tgt)
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, src.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Key: []byte(k), Value: []byte("v"), Timestamp: ts}).FirstErr())
	}
	require.NoError(t, tgt.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Key: []byte("a"), Value: []byte("v"), Timestamp: ts}).FirstErr())
	require.NoError(t, tgt.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Key: []byte("b"), Value: []byte("CHANGED"), Timestamp: ts}).FirstErr())
	rep, err := Verify(ctxT(t), c.srcCl, c.tgtCl, []string{"events"}, VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Differences())
	d := rep.Partitions[0].Differences
	require.Equal(t, Mismatch, d[0].Kind)
	require.Equal(t, Missing, d[1].Kind)

	require.NoError(t, tgt.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Key: []byte("c"), Value: []byte("v"), Timestamp: ts}).FirstErr())
	require.NoError(t, tgt.ProduceSync(ctxT(t), &kgo.Record{Topic: "events", Key: []byte("d"), Value: []byte("v"), Timestamp: ts}).FirstErr())
	rep, err = Verify(ctxT(t), c.srcCl, c.tgtCl, []string{"events"}, VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Differences())
	require.Equal(t, Extra, rep.Partitions[0].Differences[1].Kind)
}

// An offsets topic that deletes old records would lose an idle partition's
// position and copy it again: refused.
func TestOffsetsTopicMustBeCompacted(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 1)
	mkTopic(t, c.tgtAdm, "mm-mirror-offsets", 1, "cleanup.policy", "delete")
	err := c.newMirror(t, "a").Run(ctxT(t))
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "mm-mirror-offsets")
}

// Every position carries a sync point (S, T) that holds: the source's
// committed records from S are the target's records from T, in order. The
// source has aborted transactions (so source and target offsets differ),
// and a second instance takes over midway (its first sync point comes from
// the target's end at assignment).
func TestSyncPointsHold(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	check := func() {
		t.Helper()
		c.waitMirrored(t, []string{"events"}, 30*time.Second)
		pos, err := ReadPositionDetails(ctxT(t), c.tgtCl, "mm-mirror-offsets", 10*time.Second)
		require.NoError(t, err)
		require.Len(t, pos["events"], 2)
		for part, ps := range pos["events"] {
			require.True(t, ps.HasSync, "partition %d", part)
			require.LessOrEqual(t, ps.Sync.Source, ps.Next)
			read := func(cl *kgo.Client, from int64) []string {
				var keys []string
				err := exactlytest.ReadCommittedFunc(ctxT(t), cl, "events", exactlytest.ReadOptions{
					Partitions: []int32{part}, From: map[int32]int64{part: from}, Timeout: 10 * time.Second,
				}, func(r *kgo.Record) error { keys = append(keys, string(r.Key)); return nil })
				require.NoError(t, err)
				return keys
			}
			src, tgt := read(c.srcCl, ps.Sync.Source), read(c.tgtCl, ps.Sync.Target)
			require.NotEmpty(t, src, "partition %d: the sync point is below the last copies", part)
			require.Equal(t, src, tgt, "partition %d: sync point %v", part, ps.Sync)
		}
	}
	produceTxn(t, p, "events", "a", 20, true, time.Now())
	produceTxn(t, p, "events", "x", 15, false, time.Now())
	first := start(t, c.newMirror(t, "a", MaxRecordsPerTxn(7)))
	produceTxn(t, p, "events", "b", 20, true, time.Now())
	check()
	require.NoError(t, first.stop(t))

	produceTxn(t, p, "events", "y", 15, false, time.Now())
	produceTxn(t, p, "events", "c", 20, true, time.Now())
	second := start(t, c.newMirror(t, "b", MaxRecordsPerTxn(1000), CommitInterval(time.Second)))
	check()
	require.NoError(t, second.stop(t))
}
