package mirror

import (
	"bytes"
	"errors"
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

// A zombie: an instance paused after deciding to commit (a GC pause, a
// frozen VM) while its successor starts with the same instance ID. The
// successor's start fences the zombie, whose commit then fails; the
// successor's copy is exact.
func TestZombieFenced(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "first", 30, true, time.Now())

	paused, resume := make(chan struct{}), make(chan struct{})
	n := 0
	zombie := c.newMirror(t, "a", MaxRecordsPerTxn(10))
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
	// Fence as the successor's Run does, before it joins the group (the
	// zombie's revoke callback waits for its commit in flight).
	_, _, err := succ.tgt.ProducerID(ctxT(t))
	require.NoError(t, err)
	close(resume)
	zerr := z.wait(t, 20*time.Second)
	require.Error(t, zerr)
	// Real Kafka answers the fenced epoch with PRODUCER_FENCED or
	// INVALID_PRODUCER_EPOCH; kfake, whose transaction the successor's
	// InitProducerID already aborted, with INVALID_TXN_STATE. Either way
	// the zombie's commit fails and it stops.
	require.ErrorContains(t, zerr, "committing target transaction")
	require.True(t, isFenced(zerr) || errors.Is(zerr, kerr.InvalidTxnState), "zombie's error: %v", zerr)
	require.Zero(t, zombie.Stats().TxnsCommitted-1, "the zombie committed only its first transaction")

	s := start(t, succ)
	produceTxn(t, p, "events", "second", 30, true, time.Now())
	rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
	_, tgt := totalRecords(rep)
	require.Equal(t, 60, tgt)
	require.NoError(t, s.stop(t))
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
