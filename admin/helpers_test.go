package admin

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCluster starts a three-broker kfake cluster for one test and returns
// a plain client and an admin client on it.
func newCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl := newClient(t, c)
	return c, cl, kadm.NewClient(cl)
}

func newClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates one topic with the given configs (key, value pairs).
func mkTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, rf int16, kv ...string) {
	t.Helper()
	cfg := map[string]*string{}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i]] = kadm.StringPtr(kv[i+1])
	}
	resp, err := adm.CreateTopic(ctxT(t), partitions, rf, cfg, topic)
	require.NoError(t, err)
	require.NoError(t, resp.Err, topic)
}

// produce writes n records to topic partition p with a new
// non-transactional client (seeded like cl).
func produce(t *testing.T, cl *kgo.Client, topic string, p int32, n int) {
	t.Helper()
	seeds := cl.OptValue(kgo.SeedBrokers).([]string)
	pc, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer pc.Close()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte{byte(i)}}
		require.NoError(t, pc.ProduceSync(ctxT(t), r).FirstErr())
	}
}
