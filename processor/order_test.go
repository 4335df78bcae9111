package processor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/topology"
)

func TestJoinedTopics(t *testing.T) {
	require.Nil(t, joinedTopics(map[string][]string{"counts": {"in"}, "other": {"re"}}))
	got := joinedTopics(map[string][]string{
		"a": {"orders", "profiles"},
		"b": {"profiles", "prices"},
		"c": {"clicks", "users"},
		"d": {"alone"},
	})
	require.Equal(t, map[string][]string{
		"orders": {"orders", "prices", "profiles"}, "profiles": {"orders", "prices", "profiles"}, "prices": {"orders", "prices", "profiles"},
		"clicks": {"clicks", "users"}, "users": {"clicks", "users"},
	}, got)
}

// enrichTopology keeps each customer's latest profile (topic customers)
// in store "profiles" and sends each order (topic orders, keyed by
// customer) to topic enriched as "<order>|<profile>", "<order>|none"
// without one.
func enrichTopology(t testing.TB) *topology.Topology {
	b := topology.NewBuilder()
	str := topology.String()
	customers := topology.Source(b, "customers", "customers", str, str)
	orders := topology.Source(b, "orders", "orders", str, str)
	profiles := topology.Store(b, "profiles", str, str)
	out := topology.Sink(b, "enriched", "enriched", str, str, topology.Parents("enrich"))
	topology.Node(b, "profile", func(c *topology.Call, r topology.Record[string, string]) error {
		return profiles.Put(c, r.Key, r.Value)
	}, topology.Parents(customers.Name()), topology.Stores(profiles.Name()))
	topology.Node(b, "enrich", func(c *topology.Call, r topology.Record[string, string]) error {
		p, ok, err := profiles.Get(c, r.Key)
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

// joinData is a cold start: every customer's profile versions and the
// orders, written before the application starts, with timestamps that
// interleave. want maps an order to the profile it must meet: the last
// version of its customer at or before its timestamp.
type joinData struct {
	customers, orders []*kgo.Record
	want              map[string]string
}

func newJoinData(seed uint64, customers, versions, orders int) joinData {
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d := joinData{want: make(map[string]string)}
	type version struct {
		at      time.Time
		profile string
	}
	history := make(map[string][]version)
	for v := range versions {
		for c := range customers {
			key := "c" + strconv.Itoa(c)
			// Distinct timestamps: version v of customer c at v minutes
			// plus c seconds (orders fall on half seconds).
			at := base.Add(time.Duration(v)*time.Minute + time.Duration(c)*time.Second)
			p := fmt.Sprintf("%s-v%d", key, v)
			history[key] = append(history[key], version{at, p})
			d.customers = append(d.customers, &kgo.Record{Topic: "customers", Key: []byte(key), Value: []byte(p), Timestamp: at})
		}
	}
	span := time.Duration(versions) * time.Minute
	for i := range orders {
		key := "c" + strconv.Itoa(rng.IntN(customers))
		at := base.Add(time.Duration(rng.Int64N(int64(span/time.Second)))*time.Second + 500*time.Millisecond)
		id := "o" + strconv.Itoa(i)
		d.orders = append(d.orders, &kgo.Record{Topic: "orders", Key: []byte(key), Value: []byte(id), Timestamp: at})
		want := "none"
		for _, v := range history[key] {
			if !v.at.After(at) {
				want = v.profile
			}
		}
		d.want[id] = want
	}
	// Orders are written in timestamp order, as a service writes them;
	// the versions too.
	sortByTime(d.orders)
	return d
}

func sortByTime(recs []*kgo.Record) {
	for i := 1; i < len(recs); i++ {
		for j := i; j > 0 && recs[j].Timestamp.Before(recs[j-1].Timestamp); j-- {
			recs[j], recs[j-1] = recs[j-1], recs[j]
		}
	}
}

// checkEnriched asserts every order was enriched once, with the profile
// as of its timestamp.
func checkEnriched(t testing.TB, recs []*kgo.Record, want map[string]string) {
	t.Helper()
	got := make(map[string]string)
	var wrong []string
	for _, r := range recs {
		id, profile, ok := strings.Cut(string(r.Value), "|")
		require.True(t, ok, "enriched value %q", r.Value)
		_, dup := got[id]
		require.False(t, dup, "order %s enriched twice", id)
		got[id] = profile
		if want[id] != profile {
			wrong = append(wrong, fmt.Sprintf("%s: %s, want %s", id, profile, want[id]))
		}
	}
	require.Len(t, got, len(want), "orders enriched")
	require.Empty(t, wrong, "%d of %d orders met the wrong profile", len(wrong), len(want))
}

func produceAll(t testing.TB, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
}

// A cold start over a stream and a table already in their topics: every
// order meets its customer's profile as of the order's timestamp, however
// the fetches interleave the two topics, and across a restart mid-stream.
func TestJoinedInputsInTimestampOrder(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "customers", "orders"))
			require.NoError(t, err)
			t.Cleanup(c.Close)
			brokers := c.ListenAddrs()
			d := newJoinData(uint64(time.Now().UnixNano()), 20, 6, 300)
			// The orders go first: a loop reading in arrival order
			// would meet no profile for most of them.
			produceAll(t, brokers, d.orders)
			produceAll(t, brokers, d.customers)
			total := int64(len(d.orders) + len(d.customers))
			topo := enrichTopology(t)
			dir := t.TempDir()
			var in *instance
			if restart {
				// Stop the first instance at its third transaction's end.
				var ends int
				stopped := make(chan struct{})
				testHookBeforeEnd = func() {
					switch ends++; {
					case ends == 3:
						close(stopped)
					case ends > 3:
						time.Sleep(100 * time.Millisecond) // until it stops
					}
				}
				in = start(t, topo, brokers, dir, "a")
				<-stopped
				in.close(t)
				testHookBeforeEnd = nil
				done := in.p.Stats().Records
				require.Less(t, done, total, "the restart comes mid-stream")
				in = start(t, topo, brokers, dir, "a")
				in.waitRecords(t, total-done)
			} else {
				// Held records never make a transaction exceed its
				// record bound (50 here): a drain stops at it.
				var largest atomic.Int64
				in = start(t, topo, brokers, dir, "a", WithHooks(Hooks{OnCommit: func(i TxnInfo) {
					if n := int64(i.Records); n > largest.Load() {
						largest.Store(n)
					}
				}}))
				in.waitRecords(t, total)
				require.LessOrEqual(t, largest.Load(), int64(50), "records in one transaction")
			}
			checkEnriched(t, readAll(t, brokers, "enriched"), d.want)
			in.close(t)
		})
	}
}

// A second instance joins while the first is mid-stream over the joined
// inputs: the rebalance moves tasks with held records, and still every
// order is enriched once, as of its timestamp.
func TestJoinedInputsAcrossARebalance(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "customers", "orders"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	d := newJoinData(uint64(time.Now().UnixNano()), 30, 8, 1500)
	produceAll(t, brokers, d.orders)
	produceAll(t, brokers, d.customers)
	total := int64(len(d.orders) + len(d.customers))
	topo := enrichTopology(t)
	// From its third transaction on, the first instance goes slowly
	// until the second holds tasks, so that the rebalance comes
	// mid-stream.
	var ends atomic.Int64
	var second atomic.Pointer[Processor]
	joined := make(chan struct{})
	testHookBeforeEnd = func() {
		switch n := ends.Add(1); {
		case n == 3:
			close(joined)
		case n > 3:
			if b := second.Load(); b == nil || len(b.Assigned()) == 0 {
				time.Sleep(25 * time.Millisecond)
			}
		}
	}
	t.Cleanup(func() { testHookBeforeEnd = nil })
	a := start(t, topo, brokers, t.TempDir(), "a", MaxRecordsPerTxn(20))
	<-joined
	b := start(t, topo, brokers, t.TempDir(), "b", MaxRecordsPerTxn(20))
	second.Store(b.p)
	waitFor(t, 90*time.Second, "every record committed by one of the two", func() bool {
		return a.p.Stats().Records+b.p.Stats().Records == total
	})
	require.Positive(t, b.p.Stats().Records, "the second instance took tasks")
	checkEnriched(t, readAll(t, brokers, "enriched"), d.want)
	a.close(t)
	b.close(t)
}

// Joined topics with different partition counts are refused at start, the
// error naming each topic's count.
func TestJoinedTopicsMustBeCoPartitioned(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(3, "customers"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	p, err := New(enrichTopology(t), Brokers(c.ListenAddrs()...), Group("app"), StateDir(t.TempDir()), WithLogger(testLogger(t)))
	require.NoError(t, err)
	err = p.Run(context.Background())
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "source topics are not co-partitioned, their partition counts differ (customers 3, orders 4)")
}

// orderUnderTest returns an order of a processor of the enrichment
// topology that polled customers partition 0 up to offset 9: its
// position there is 10.
func orderUnderTest(t *testing.T) (*Processor, *order, topicPart) {
	p, err := New(enrichTopology(t), Brokers("127.0.0.1:1"), Group("app"), StateDir(t.TempDir()))
	require.NoError(t, err)
	p.order.reset()
	o := p.newOrder(nil)
	tp := topicPart{"customers", 0}
	o.polled[tp] = &kgo.Record{Topic: "customers", Partition: 0, Offset: 9, ProducerID: -1}
	return p, o, tp
}

// An input that sat caught up for long, then has records the fetches have
// not returned (a customer written just before an order): the task waits
// for them. A wait counted from when the input first went quiet would have
// run out at once, and the order would have missed its customer.
func TestOrderWaitsForALagAfterALongQuiet(t *testing.T) {
	p, o, tp := orderUnderTest(t)
	p.tasks.sawStable(tp.topic, tp.part, 10) // caught up
	require.True(t, o.ready(tp))
	p.order.waitSince[tp] = time.Now().Add(-time.Hour) // quiet for an hour
	p.tasks.sawStable(tp.topic, tp.part, 12)           // then a record, not fetched yet
	require.False(t, o.ready(tp), "a lag is waited for")
	// The same lag, waited for past maxLagWait: offsets without records.
	w := p.order.lag[tp]
	w.since = time.Now().Add(-maxLagWait - time.Second)
	p.order.lag[tp] = w
	require.True(t, o.ready(tp))
	require.True(t, o.ready(tp), "settled at that position")
}

// A task revoked while it waited, and given back, waits afresh: the time
// another member owned it does not count.
func TestOrderForgetsTheWaitsOfARevokedTask(t *testing.T) {
	p, o, tp := orderUnderTest(t)
	p.tasks.sawStable(tp.topic, tp.part, 12)
	require.False(t, o.ready(tp))
	w := p.order.lag[tp]
	w.since = time.Now().Add(-10 * time.Second) // revoked meanwhile, for 10 s
	p.order.lag[tp] = w
	p.tasks.revokes.Add(1)
	require.False(t, o.ready(tp), "the wait starts again")
}

// An input that looks caught up by a last stable offset seen before the
// records queued (a customer written and acknowledged, then its order
// written and fetched first): the broker is asked again, and the task
// waits for the customer.
func TestOrderAsksAgainWhenCaughtUpByAnOldOffset(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "customers", "orders"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	var recs []*kgo.Record
	for i := range 12 {
		recs = append(recs, &kgo.Record{Topic: "customers", Key: []byte("c" + strconv.Itoa(i)), Value: []byte("v")})
	}
	produceAll(t, brokers, recs)
	p, err := New(enrichTopology(t), Brokers(brokers...), Group("app"), StateDir(t.TempDir()), WithLogger(testLogger(t)))
	require.NoError(t, err)
	require.NoError(t, p.open(context.Background()))
	t.Cleanup(p.shutdown)
	p.order.reset()
	o := p.newOrder(nil)
	tp := topicPart{"customers", 0}
	o.polled[tp] = &kgo.Record{Topic: "customers", Partition: 0, Offset: 9, ProducerID: -1}
	p.tasks.sawStable(tp.topic, tp.part, 10) // what a fetch said before the last two
	o.added = time.Now()                     // an order queued since
	require.False(t, o.ready(tp), "the customers at offsets 10 and 11 are waited for")
	lso, _ := p.tasks.stableOf(tp)
	require.Equal(t, int64(12), lso)
}
