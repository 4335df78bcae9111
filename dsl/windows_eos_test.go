package dsl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// TestWindowedFinalsExactlyOnceOnKfake runs a tumbling EmitFinal count on
// the real processor against kfake, with every third transaction commit
// failed (the transaction aborts, its state is dropped and its records are
// processed again) and the first instance closed mid-stream and replaced
// by one on a fresh state directory (it restores the window store, marks
// included, from the changelog). The committed finals must equal the
// reference count once per window: an aborted close re-emits nothing that
// committed, and no window is lost or winEmitted twice across the handover.
func TestWindowedFinalsExactlyOnceOnKfake(t *testing.T) {
	t.Parallel()
	const parts, keys, perKey = 2, 6, 60
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, "in"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	var mu sync.Mutex
	commits, aborts := 0, 0
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		mu.Lock()
		defer mu.Unlock()
		if commits++; !r.Commit || commits%3 != 0 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionAbortable.Code
		return resp, nil, true
	})

	// Key k goes to partition k % parts; its records are 13 ms apart, in
	// order, so none is late; then one flush record per partition, far
	// later, closes every window.
	const size = 100 * time.Millisecond
	want := make(map[string]int64)
	var recs []*kgo.Record
	for i := range perKey {
		for k := range keys {
			key := "k" + strconv.Itoa(k)
			at := winT0.Add(time.Duration(i*13+k) * time.Millisecond)
			recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(k % parts), Key: []byte(key), Value: []byte("v"), Timestamp: at})
			want[fmt.Sprintf("%s@%d", key, at.Truncate(size).UnixMilli())]++
		}
	}
	for p := range parts {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: int32(p), Key: []byte("flush" + strconv.Itoa(p)), Value: []byte("v"), Timestamp: winT0.Add(time.Hour)})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()

	d := dsl.New(nil)
	g := dsl.StreamFrom(d, "in", "in", str, str).GroupByKey(str, str)
	dsl.WindowedBy(g, dsl.Tumbling(size), dsl.EmitFinal(), dsl.WindowNamed("per-window")).Count().
		ToStream().To("out", winKeySerde, topology.Int64())
	top, err := d.Build()
	require.NoError(t, err)

	run := func(dir string, n int64, stopAt int64) int64 {
		p, err := processor.New(top, processor.Brokers(brokers...), processor.Group("win"), processor.InstanceID("a"),
			processor.StateDir(dir), processor.CommitInterval(20*time.Millisecond), processor.MaxRecordsPerTxn(17),
			processor.DeadLetterTopic("dlq"), processor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			processor.KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)),
			processor.WithHooks(processor.Hooks{OnAbort: func(error) { mu.Lock(); aborts++; mu.Unlock() }}))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		deadline := time.Now().Add(60 * time.Second)
		for p.Stats().Records < min(n, stopAt) {
			select {
			case err := <-done:
				require.NoError(t, err, "instance stopped")
			default:
			}
			require.True(t, time.Now().Before(deadline), "timed out at %d of %d records", p.Stats().Records, n)
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		require.NoError(t, <-done)
		return p.Stats().Records
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
	total := int64(len(recs))
	first := run(t.TempDir(), total, total/2)
	require.Less(t, first, total, "the first instance stopped mid-stream")
	run(t.TempDir(), total-first, total)

	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer rd.Close()
	out, err := exactlytest.ReadCommitted(context.Background(), rd, "out", exactlytest.ReadOptions{Timeout: 30 * time.Second})
	require.NoError(t, err)
	got := make(map[string]int64)
	ws := topology.WindowedSerde(str)
	for _, r := range exactlytest.Records(out) {
		w, err := ws.Decode(r.Key)
		require.NoError(t, err)
		k := fmt.Sprintf("%s@%d", w.Key, w.Window.Start.UnixMilli())
		_, dup := got[k]
		require.False(t, dup, "window %s winEmitted twice", k)
		n, err := topology.Int64().Decode(r.Value)
		require.NoError(t, err)
		got[k] = n
	}
	require.Equal(t, want, got)
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, aborts, "some transactions aborted")
}
