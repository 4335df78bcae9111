package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

type instance struct {
	srv  *httptest.Server
	p    *processor.Processor
	done chan error
	stop context.CancelFunc
}

func startInstance(t *testing.T, brokers []string, id, dir string, hooks ...processor.Hooks) *instance {
	t.Helper()
	topo, err := orders.OrderTopology()
	require.NoError(t, err)
	api := New("g")
	h := api.Hooks()
	for _, extra := range hooks {
		h = chain(h, extra)
	}
	p, err := processor.New(topo, processor.Brokers(brokers...), processor.Group("g"), processor.InstanceID(id),
		processor.StateDir(dir), processor.DeadLetterTopic(orders.TopicDLQ), processor.CommitInterval(50*time.Millisecond),
		processor.MaxRecordsPerTxn(50),
		processor.WithHooks(h), processor.KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)))
	require.NoError(t, err)
	api.Attach(p)
	in := &instance{srv: httptest.NewServer(api.Handler()), p: p, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	var wg sync.WaitGroup
	wg.Go(func() { in.done <- p.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); in.srv.Close() })
	return in
}

// chain runs the restore-progress hook of extra after a's (the only one
// the tests add).
func chain(a, extra processor.Hooks) processor.Hooks {
	if f := extra.OnRestoreProgress; f != nil {
		prev := a.OnRestoreProgress
		a.OnRestoreProgress = func(rp processor.RestoreProgress) { prev(rp); f(rp) }
	}
	return a
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}

func cluster(t *testing.T) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, orders.TopicOrders))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func produce(t *testing.T, brokers []string, count int, seed int64) orders.ProduceStats {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	st, err := orders.Produce(context.Background(), cl, orders.ProduceConfig{Count: count, Customers: 5, MalformedShare: 0.1, Seed: seed})
	require.NoError(t, err)
	return st
}

func TestMetricsAfterARunWithAborts(t *testing.T) {
	c := cluster(t)
	var n int
	var mu sync.Mutex
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		mu.Lock()
		defer mu.Unlock()
		if n++; !r.Commit || n%2 != 0 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionAbortable.Code
		return resp, nil, true
	})
	st := produce(t, c.ListenAddrs(), 400, 1)
	in := startInstance(t, c.ListenAddrs(), "a", t.TempDir())
	waitFor(t, "all records", func() bool { return in.p.Stats().Records == int64(st.Produced) })

	code, body := get(t, in.srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	metric := func(line string) {
		t.Helper()
		require.Contains(t, body, line, "metrics:\n%s", body)
	}
	metric(`exactly_records_in_total{group="g"} 400`)
	metric(`exactly_records_dead_lettered_total{group="g"} ` + itoa(st.Malformed))
	metric(`exactly_records_out_total{group="g"} ` + itoa(st.Valid))
	metric(`exactly_transactions_aborted_total{cause="cluster",group="g"}`)
	metric(`exactly_ready{group="g"} 1`)
	metric(`exactly_transaction_duration_seconds_count{group="g"}`)
	metric(`exactly_transaction_ending_seconds_count{group="g"}`)
	metric(`exactly_consumer_lag_offsets{group="g",partition="0"}`)
	metric(`exactly_state_disk_bytes{group="g"}`)
	require.Positive(t, in.p.Stats().Aborted)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestReadinessFlipsDuringRestore(t *testing.T) {
	c := cluster(t)
	st := produce(t, c.ListenAddrs(), 300, 2)
	first := startInstance(t, c.ListenAddrs(), "a", t.TempDir())
	waitFor(t, "first run", func() bool { return first.p.Stats().Records == int64(st.Produced) })
	first.stop()
	require.NoError(t, <-first.done)

	release := make(chan struct{})
	var once sync.Once
	restoring := make(chan struct{})
	block := processor.Hooks{OnRestoreProgress: func(processor.RestoreProgress) {
		once.Do(func() { close(restoring) })
		<-release
	}}
	in := startInstance(t, c.ListenAddrs(), "b", t.TempDir(), block)
	<-restoring
	code, _ := get(t, in.srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready while restoring")
	code, _ = get(t, in.srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code, "alive while restoring")
	close(release)
	waitFor(t, "ready after restore", func() bool { code, _ := get(t, in.srv.URL+"/readyz"); return code == http.StatusOK })
}

func TestStateQueries(t *testing.T) {
	c := cluster(t)
	brokers := c.ListenAddrs()
	st := produce(t, brokers, 200, 3)
	in := startInstance(t, brokers, "a", t.TempDir())
	waitFor(t, "records", func() bool { return in.p.Stats().Records == int64(st.Produced) })

	var resp stateResponse
	code, body := get(t, in.srv.URL+"/state/customers/c-0001")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.True(t, resp.Found)
	var cust orders.Customer
	require.NoError(t, json.Unmarshal(resp.Value, &cust))
	require.Positive(t, cust.OrderCount)
	before := cust.OrderCount

	// A min_offset beyond what was consumed times out (bounded wait).
	code, body = get(t, in.srv.URL+"/state/customers/c-0001?min_offset=999999&wait=200ms")
	require.Equal(t, http.StatusGatewayTimeout, code, body)

	// Read your own write: produce an order, then wait for its offset.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	// An order id whose own hash names the other partition than its
	// customer's, where the order-ids store keeps it (the store is written
	// from orders keyed by customer).
	cp := partitionOf("c-0001", 2)
	id := "o-mine"
	for i := 0; partitionOf(id, 2) == cp; i++ {
		id = "o-mine-" + itoa(i)
	}
	o := `{"order_id":"` + id + `","customer_id":"c-0001","amount_cents":7,"created_at":"2026-11-21T00:00:00Z"}`
	r, err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: orders.TopicOrders, Key: []byte("c-0001"), Value: []byte(o)}).First()
	require.NoError(t, err)
	require.Equal(t, cp, r.Partition)
	code, body = get(t, in.srv.URL+"/state/customers/c-0001?min_offset="+itoa(int(r.Offset))+"&wait=10s")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.NoError(t, json.Unmarshal(resp.Value, &cust))
	require.Equal(t, before+1, cust.OrderCount)
	require.GreaterOrEqual(t, resp.Offset, r.Offset)
	require.Equal(t, r.Partition, resp.Partition)

	// The order id store, fed by the same input, reflects it too, found
	// through the input key that wrote it: its value is the customer id
	// (raw bytes, served as a JSON string).
	code, body = get(t, in.srv.URL+"/state/"+orders.StoreOrderIDs+"/"+id+"?route=c-0001&min_offset="+itoa(int(r.Offset))+"&wait=10s")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.True(t, resp.Found, body)
	require.JSONEq(t, `"c-0001"`, string(resp.Value))
	require.Equal(t, r.Partition, resp.Partition)
	// Without the route the store key is hashed as an input key: the other
	// partition, which does not hold it.
	code, body = get(t, in.srv.URL+"/state/"+orders.StoreOrderIDs+"/"+id)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.False(t, resp.Found, body)
	require.NotEqual(t, r.Partition, resp.Partition)

	// A store the topology does not have: 404, and the body's offset says
	// unknown.
	code, body = get(t, in.srv.URL+"/state/no-such-store/k")
	require.Equal(t, http.StatusNotFound, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.EqualValues(t, -1, resp.Offset)

	code, _ = get(t, in.srv.URL+"/state/customers/c-0001?min_offset=-4")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestStateQueryNamesTheOwner(t *testing.T) {
	c := cluster(t)
	brokers := c.ListenAddrs()
	produce(t, brokers, 100, 4)
	a := startInstance(t, brokers, "a", t.TempDir())
	b := startInstance(t, brokers, "b", t.TempDir())
	waitFor(t, "both own a partition", func() bool {
		return a.p.Ready() && b.p.Ready() && len(a.p.Assigned()) == 1 && len(b.p.Assigned()) == 1
	})
	// One of the two serves the key, the other names it.
	var codes []int
	var owner string
	for _, in := range []*instance{a, b} {
		code, body := get(t, in.srv.URL+"/state/customers/c-0002")
		codes = append(codes, code)
		if code == http.StatusMisdirectedRequest {
			var resp stateResponse
			require.NoError(t, json.Unmarshal([]byte(body), &resp))
			owner = resp.Owner
		}
	}
	require.ElementsMatch(t, []int{http.StatusOK, http.StatusMisdirectedRequest}, codes)
	require.True(t, strings.HasPrefix(owner, "g-"), "owner %q names the owning instance's transactional id", owner)
}

// partitionOf is the partition the default partitioner gives key among n.
func partitionOf(key string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic(orders.TopicOrders).Partition(&kgo.Record{Key: []byte(key)}, n))
}
