package mirror

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPositionsReadPastAStaleEnd: a broker restarted after a crash answers
// a partition's end with the high watermark it last checkpointed, which can
// lie below position records it acknowledged before the crash, until a
// write moves it. Here the target answers every listing of the offsets
// topic's end with 0 while a restarted mirror takes its partitions. Read to
// the listed end, the positions were empty and the mirror copied
// everything again (seen on the one-node Apache Kafka target of
// TestMirrorTargetBrokerKilled); read to the barrier the mirror writes
// first, they are whole and nothing is copied twice.
func TestPositionsReadPastAStaleEnd(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 3)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "a", 30, true, time.Now())
	r := start(t, c.newMirror(t, "a"))
	c.waitMirrored(t, []string{"events"}, 20*time.Second)
	require.NoError(t, r.stop(t))

	var armed atomic.Bool // until the restarted mirror owns its partitions
	armed.Store(true)
	c.tgt.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.tgt.KeepControl()
		lr := req.(*kmsg.ListOffsetsRequest)
		if !armed.Load() {
			return nil, nil, false
		}
		for _, rt := range lr.Topics {
			if rt.Topic != "mm-mirror-offsets" {
				return nil, nil, false
			}
			for _, rp := range rt.Partitions {
				if rp.Timestamp != -1 { // the latest offset, not the log start
					return nil, nil, false
				}
			}
		}
		resp := lr.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range lr.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.Offset, sp.Timestamp, sp.LeaderEpoch = rp.Partition, 0, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	produceTxn(t, p, "events", "b", 30, true, time.Now())
	m := c.newMirror(t, "a")
	r = start(t, m)
	require.Eventually(t, func() bool { return len(m.Stats().Partitions) == 3 }, 20*time.Second, 10*time.Millisecond)
	armed.Store(false) // Verify lists the offsets topic too
	rep := c.waitMirrored(t, []string{"events"}, 20*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, 60, src)
	require.Equal(t, 60, tgt, "nothing copied twice")
	require.EqualValues(t, 30, m.Stats().RecordsCopied, "the restarted mirror copied only the new records")
	require.NoError(t, r.stop(t))
}
