package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusters is a source and a target kfake cluster for one test.
type clusters struct {
	src, tgt       *kfake.Cluster
	srcCl, tgtCl   *kgo.Client
	srcAdm, tgtAdm *kadm.Client
}

func newClusters(t *testing.T) *clusters {
	t.Helper()
	c := &clusters{}
	var err error
	c.src, err = kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.src.Close)
	c.tgt, err = kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.tgt.Close)
	c.srcCl = newClient(t, c.src)
	c.tgtCl = newClient(t, c.tgt)
	c.srcAdm, c.tgtAdm = kadm.NewClient(c.srcCl), kadm.NewClient(c.tgtCl)
	return c
}

func newClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(50 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func mkTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, kv ...string) {
	t.Helper()
	cfg := map[string]*string{}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i]] = kadm.StringPtr(kv[i+1])
	}
	resp, err := adm.CreateTopic(ctxT(t), partitions, -1, cfg, topic)
	require.NoError(t, err)
	require.NoError(t, resp.Err, topic)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newMirror returns a mirror between the clusters with test timings.
func (c *clusters) newMirror(t *testing.T, id string, opts ...Opt) *Mirror {
	t.Helper()
	base := []Opt{
		SourceBrokers(c.src.ListenAddrs()...), TargetBrokers(c.tgt.ListenAddrs()...),
		Topics("events"), InstanceID(id), CommitInterval(50 * time.Millisecond), TransactionTimeout(5 * time.Second),
		FetchMaxWait(100 * time.Millisecond), WithLogger(testLogger(t)),
		SourceOpts(kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(250*time.Millisecond)),
	}
	m, err := New("mm", append(base, opts...)...)
	require.NoError(t, err)
	return m
}

// running is a mirror's Run in the background.
type running struct {
	m    *Mirror
	done chan error
}

func start(t *testing.T, m *Mirror) *running {
	t.Helper()
	r := &running{m: m, done: make(chan error, 1)}
	go func() { r.done <- m.Run(context.Background()) }()
	t.Cleanup(m.Close)
	return r
}

// stop closes the mirror and returns Run's error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.m.Close()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("mirror did not stop")
		return nil
	}
}

// wait returns Run's error once it returns by itself.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(timeout):
		t.Fatal("mirror did not return")
		return nil
	}
}

// producer writes to the source, in transactions when txnID is set.
func (c *clusters) producer(t *testing.T, txnID string) *kgo.Client {
	opts := []kgo.Opt{kgo.DefaultProduceTopic("events")}
	if txnID != "" {
		opts = append(opts, kgo.TransactionalID(txnID))
	}
	return newClient(t, c.src, opts...)
}

// produceTxn writes n records keyed prefix-i in one source transaction,
// committed or aborted.
func produceTxn(t *testing.T, cl *kgo.Client, topic, prefix string, n int, commit bool, ts time.Time) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, cl.BeginTransaction())
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: fmt.Appendf(nil, "v-%s-%d", prefix, i), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(prefix)}}}
		require.NoError(t, cl.ProduceSync(ctx, r).FirstErr())
	}
	require.NoError(t, cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
}

// waitMirrored waits until the target holds exactly the source's committed
// records of topics, and the positions verify too.
func (c *clusters) waitMirrored(t *testing.T, topics []string, timeout time.Duration) *Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *Report
	for time.Now().Before(deadline) {
		r, err := Verify(ctxT(t), c.srcCl, c.tgtCl, topics, VerifyOptions{Timeout: 10 * time.Second})
		if err == nil && r.Differences() == 0 {
			r, err = Verify(ctxT(t), c.srcCl, c.tgtCl, topics, VerifyOptions{OffsetsTopic: "mm-mirror-offsets", Timeout: 10 * time.Second})
			require.NoError(t, err)
			require.Zero(t, r.Differences(), "differences up to the mirrored positions")
			return r
		}
		if err != nil {
			t.Logf("verifying: %v", err)
		}
		last = r
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		_, _ = last.WriteTo(os.Stderr)
	}
	t.Fatalf("target did not mirror %v within %s", topics, timeout)
	return nil
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MIRROR_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

func totalRecords(r *Report) (src, tgt int) {
	for _, p := range r.Partitions {
		src += p.SourceRecords
		tgt += p.TargetRecords
	}
	return src, tgt
}
