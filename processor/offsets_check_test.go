package processor

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The session's offset commit must be exactly the next offsets of the
// records processed: a partition missing from it (a revoke kgo did not pass
// on) or one it advanced past unprocessed records is refused.
func TestOffsetsMatch(t *testing.T) {
	req := func(parts map[int32]int64) *kmsg.TxnOffsetCommitRequest {
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "in"
		for p, o := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, o
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(parts) > 0 {
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	consumed := map[topicPart]int64{{"in", 0}: 627, {"in", 1}: 9}
	require.NoError(t, offsetsMatch(consumed, req(map[int32]int64{0: 628, 1: 10})))
	require.NoError(t, offsetsMatch(map[topicPart]int64{}, req(nil)), "a punctuation-only transaction")
	require.ErrorIs(t, offsetsMatch(consumed, req(map[int32]int64{1: 10})), errOffsetsDiverge, "partition 0 dropped")
	require.ErrorIs(t, offsetsMatch(consumed, req(map[int32]int64{0: 640, 1: 10})), errOffsetsDiverge, "advanced past unprocessed records")
	require.ErrorIs(t, offsetsMatch(consumed, req(map[int32]int64{0: 628, 1: 10, 2: 5})), errOffsetsDiverge, "a partition not processed")
}

// TestDivergingOffsetsAbort takes the guard's path end to end: the first
// transaction whose commit carries offsets that differ from the records it
// processed (the divergence is made by a test hook here; on Kafka it was a
// partition the session dropped) aborts instead of committing, and the
// instance goes on: every record is then processed exactly once, as if
// the transaction had never been.
//
// Without the guard the check never runs and the transaction commits (the
// first assertion fails). end turns the refusal into a plain abort; left as
// an error it also ends in an abort, through a new session.
func TestDivergingOffsetsAbort(t *testing.T) {
	var diverged atomic.Int32
	testHookConsumed = func(consumed map[topicPart]int64) map[topicPart]int64 {
		if len(consumed) == 0 || !diverged.CompareAndSwap(0, 1) {
			return consumed
		}
		out := make(map[topicPart]int64, len(consumed))
		for tp, off := range consumed {
			out[tp] = off - 1 // as if the session had committed past a record never processed
		}
		return out
	}
	t.Cleanup(func() { testHookConsumed = nil })

	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	produceInputs(t, brokers, 4, 25, nil)
	in := start(t, counterTopology(t), brokers, dir, "a")
	in.waitRecords(t, 100)
	in.close(t)

	require.EqualValues(t, 1, diverged.Load(), "the divergence was made")
	require.GreaterOrEqual(t, in.p.Stats().Aborted, int64(1), "the diverging transaction aborted")
	require.Equal(t, map[string]int64{"k0": 25, "k1": 25, "k2": 25, "k3": 25}, localCounts(t, dir, 2))
	require.Len(t, readAll(t, brokers, "out"), 100, "no output of the aborted transaction is visible")
}
