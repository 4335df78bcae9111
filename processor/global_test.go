package processor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/taskrun"
	"github.com/exactly-stream/exactly/topology"
)

// globalTopology sends each order (topic orders: key order id, value
// customer id) to topic enriched as "<customer>|<profile>", looking the
// customer up in the global store "profiles" (topic profiles), "none"
// without one.
func globalTopology(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	str := topology.String()
	orders := topology.Source(b, "orders", "orders", str, str)
	profiles := topology.GlobalStore(b, "profiles", "profiles", str, str)
	out := topology.Sink(b, "enriched", "enriched", str, str, topology.Parents("enrich"))
	topology.Node(b, "enrich", func(c *topology.Call, r topology.Record[string, string]) error {
		p, ok, err := profiles.Get(c, r.Value)
		if err != nil {
			return err
		}
		if !ok {
			p = "none"
		}
		return out.Send(c, r.Key, r.Value+"|"+p)
	}, topology.Parents(orders.Name()), topology.Stores(profiles.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	return topo
}

func profile(key, value string) *kgo.Record {
	r := &kgo.Record{Topic: "profiles", Key: []byte(key)}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

// orderRecs writes orders id0.. for customers c0..c(n-1), each once.
func orderRecs(prefix string, customers int) []*kgo.Record {
	var recs []*kgo.Record
	for c := range customers {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(prefix + strconv.Itoa(c)), Value: []byte("c" + strconv.Itoa(c))})
	}
	return recs
}

// enrichedBy returns, per order id with prefix, the profile it met.
func enrichedBy(t testing.TB, brokers []string, prefix string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, r := range readAll(t, brokers, "enriched") {
		if !strings.HasPrefix(string(r.Key), prefix) {
			continue
		}
		_, p, _ := strings.Cut(string(r.Value), "|")
		_, dup := out[string(r.Key)]
		require.False(t, dup, "order %s enriched twice", r.Key)
		out[string(r.Key)] = p
	}
	return out
}

// A global store is read to its topic's end before the first record is
// processed, follows the topic while the instance runs, continues from its
// checkpoints after a restart, and is read again from the start when its
// topic was recreated. Its topic has 3 partitions, the input 4: a global
// store is not co-partitioned with anything.
func TestGlobalStore(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(3, "profiles"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	const customers = 60
	var profiles []*kgo.Record
	want := make(map[string]string)
	for v := range 3 {
		for i := range customers {
			p := fmt.Sprintf("c%d-v%d", i, v)
			profiles = append(profiles, profile("c"+strconv.Itoa(i), p))
			want["a"+strconv.Itoa(i)] = p
		}
	}
	for i := 0; i < customers; i += 7 {
		profiles = append(profiles, profile("c"+strconv.Itoa(i), "")) // a tombstone
		want["a"+strconv.Itoa(i)] = "none"
	}
	produceAll(t, brokers, profiles)
	produceAll(t, brokers, orderRecs("a", customers))
	topo := globalTopology(t)
	dir := t.TempDir()

	// Bootstrapped before the first order: every order meets the latest
	// profile, tombstones included.
	in := start(t, topo, brokers, dir, "a")
	in.waitRecords(t, customers)
	require.Equal(t, want, enrichedBy(t, brokers, "a"))

	// Followed while running.
	produceAll(t, brokers, []*kgo.Record{profile("c1", "c1-v9"), profile("c2", "")})
	waitFor(t, 30*time.Second, "the updates applied", func() bool {
		v1, _, _ := in.p.db.Load().Get("profiles", taskrun.GlobalPartition, []byte("c1"))
		_, ok2, _ := in.p.db.Load().Get("profiles", taskrun.GlobalPartition, []byte("c2"))
		return string(v1) == "c1-v9" && !ok2
	})
	// Queried on any instance, from its replica.
	q, err := in.p.Query(context.Background(), "profiles", []byte("c1"))
	require.NoError(t, err)
	require.Equal(t, QueryResult{Partition: taskrun.GlobalPartition, Value: []byte("c1-v9"), Found: true, Offset: -1}, q)
	q, err = in.p.Query(context.Background(), "profiles", []byte("c2"))
	require.NoError(t, err)
	require.False(t, q.Found, "a tombstone deleted c2")
	produceAll(t, brokers, orderRecs("b", 3))
	in.waitRecords(t, customers+3)
	require.Equal(t, map[string]string{"b0": "none", "b1": "c1-v9", "b2": "none"}, enrichedBy(t, brokers, "b"))
	in.close(t)

	// Changes while stopped are read on restart, from the checkpoints.
	produceAll(t, brokers, []*kgo.Record{profile("c3", ""), profile("c4", "c4-v10")})
	in = start(t, topo, brokers, dir, "a")
	produceAll(t, brokers, orderRecs("d", 6))
	in.waitRecords(t, 6)
	require.Equal(t, map[string]string{"d0": "none", "d1": "c1-v9", "d2": "none", "d3": "none", "d4": "c4-v10", "d5": "c5-v2"}, enrichedBy(t, brokers, "d"))
	in.close(t)

	// The topic deleted and recreated with other profiles: the store holds
	// only the new topic's.
	adm := kadm.NewClient(newClient(t, brokers))
	_, err = adm.DeleteTopics(context.Background(), "profiles")
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the topic recreated", func() bool {
		resp, err := adm.CreateTopic(context.Background(), 3, 1, nil, "profiles")
		return err == nil && resp.Err == nil
	})
	// As many records as before and more, so that the old checkpoints lie
	// within the new topic: only its topic ID tells it apart.
	var fresh []*kgo.Record
	for i := range 400 {
		fresh = append(fresh, profile("n"+strconv.Itoa(i), "x"))
	}
	produceAll(t, brokers, append(fresh, profile("c5", "c5-new")))
	in = start(t, topo, brokers, dir, "a")
	produceAll(t, brokers, orderRecs("e", 6))
	in.waitRecords(t, 6)
	require.Equal(t, map[string]string{"e0": "none", "e1": "none", "e2": "none", "e3": "none", "e4": "none", "e5": "c5-new"}, enrichedBy(t, brokers, "e"))
	in.close(t)
}

func newClient(t testing.TB, brokers []string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// bootstrapGlobals returns only once every global store holds its topic up
// to the end the topic had when it began: nothing of the topic is left to
// a background loop for the first records to miss.
func TestGlobalBootstrapReadsToTheEnd(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(3, "profiles"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	want := make(map[string]string)
	var recs []*kgo.Record
	for v := range 5 {
		for i := range 400 {
			key, val := "c"+strconv.Itoa(i), fmt.Sprintf("v%d", v)
			if v == 4 && i%5 == 0 {
				val = "" // a tombstone
			}
			recs = append(recs, profile(key, val))
			want[key] = val
		}
	}
	produceAll(t, brokers, recs)
	p, err := New(globalTopology(t), Brokers(brokers...), Group("app"), StateDir(t.TempDir()), WithLogger(testLogger(t)))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, p.open(ctx))
	t.Cleanup(p.shutdown)
	g, err := p.bootstrapGlobals(ctx)
	require.NoError(t, err)
	t.Cleanup(g.cl.Close)
	db := p.db.Load()
	for key, val := range want {
		got, ok, err := db.Get("profiles", taskrun.GlobalPartition, []byte(key))
		require.NoError(t, err)
		if val == "" {
			require.False(t, ok, "%s was deleted", key)
		} else {
			require.True(t, ok, "%s", key)
			require.Equal(t, val, string(got), "%s", key)
		}
	}
}

// A global store answers queries only once bootstrapped: before, Query
// says the processor has not started, not that the key is absent.
func TestGlobalStoreQueryBeforeBootstrap(t *testing.T) {
	t.Parallel()
	p, err := New(globalTopology(t), Brokers("127.0.0.1:1"), Group("app"), StateDir(t.TempDir()))
	require.NoError(t, err)
	_, err = p.Query(context.Background(), "profiles", []byte("c1"))
	require.ErrorIs(t, err, ErrNotStarted)
}
