package mirror

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The target refuses the first two transactional produce requests (copied
// records, positions or both; Produce v13 names topics by ID only) with
// INVALID_RECORD, which kgo does not retry). A failed record must never
// be skipped: its transaction aborts, positions and all, and the records
// are copied again, so the target ends exactly equal to the source.
func TestFailedProduceAbortsAndRetries(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "a", 40, true, time.Now())

	var failed atomic.Int32
	c.tgt.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.tgt.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if pr.TransactionID == nil || failed.Load() >= 2 {
			return nil, nil, false
		}
		failed.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, pt := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = pt.Topic, pt.TopicID
			for _, pp := range pt.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pp.Partition, kerr.InvalidRecord.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	m := c.newMirror(t, "a")
	r := start(t, m)
	rep := c.waitMirrored(t, []string{"events"}, 20*time.Second)
	_, tgt := totalRecords(rep)
	require.Equal(t, 40, tgt)
	require.EqualValues(t, 2, failed.Load())
	require.Positive(t, m.Stats().TxnsAborted)
	require.NoError(t, r.stop(t))
}

// An instance that created the offsets topic lists it, for its first
// assignment a moment later, through kgo's cached metadata from before it
// existed: UNKNOWN_TOPIC_OR_PARTITION. The mirror read that as "no
// positions" and copied every partition it took again from its start,
// over the positions another instance had committed (the chaos soak,
// seed 222 under load: 60 duplicates, chaos-2 starting mirror-src-0/2,
// 1/1 and 1/2 at the log start). Here the target answers the first
// listing of the offsets topic so; the positions must still hold.
func TestUnknownOffsetsTopicIsNotNoPositions(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 2)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "a", 20, true, time.Now())
	r := start(t, c.newMirror(t, "a"))
	c.waitMirrored(t, []string{"events"}, 20*time.Second)
	require.NoError(t, r.stop(t))

	produceTxn(t, p, "events", "b", 10, true, time.Now())
	stale := c.tgt.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "mm-mirror-offsets", Err: kerr.UnknownTopicOrPartition})
	r = start(t, c.newMirror(t, "b"))
	rep := c.waitMirrored(t, []string{"events"}, 20*time.Second)
	_, tgt := totalRecords(rep)
	require.Equal(t, 30, tgt)
	require.Equal(t, 1, stale.Hits(), "the offsets topic was never listed as unknown")
	require.NoError(t, r.stop(t))
}
