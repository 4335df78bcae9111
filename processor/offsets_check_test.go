package processor

import (
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
