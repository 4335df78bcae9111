package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

const changelogTopic = DefaultOrderGroup + "-" + StoreCustomers + "-changelog"

// cluster is an in-process kfake cluster with the pipeline's topics.
type cluster struct {
	addrs []string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(3, TopicOrders, TopicEvents, TopicDLQ, TopicPayments, TopicPaymentsDLQ, changelogTopic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	return &cluster{addrs: kc.ListenAddrs()}
}

func (c *cluster) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

var txnIDs atomic.Int64

// txnClient returns a transactional client with a fresh transactional ID.
func (c *cluster) txnClient(t *testing.T) *kgo.Client {
	t.Helper()
	return c.client(t, kgo.TransactionalID(fmt.Sprintf("test-%d", txnIDs.Add(1))))
}

// readAll returns every committed record of topic, in partition order.
func (c *cluster) readAll(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	recs, err := exactlytest.ReadCommitted(context.Background(), c.client(t), topic, exactlytest.ReadOptions{Timeout: 10 * time.Second})
	require.NoError(t, err, "reading %s", topic)
	return exactlytest.Records(recs)
}

// write produces recs in one committed transaction.
func (c *cluster) write(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	if len(recs) == 0 {
		return
	}
	ctx := context.Background()
	cl := c.txnClient(t)
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, cloneRecords(recs)...).FirstErr())
	require.NoError(t, cl.EndTransaction(ctx, kgo.TryCommit))
}

// cloneRecords copies records for producing: kgo sets fields on produced
// records, and the tests produce the same outputs more than once.
func cloneRecords(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	return out
}

// scenario is a produced input and the outputs a correct pipeline gives for
// it, computed by running the topologies in memory. Tests corrupt the
// outputs before writing them.
type scenario struct {
	c           *cluster
	stats       ProduceStats
	orders      *memPipeline
	events      []*kgo.Record
	dlq         []*kgo.Record
	payments    []*kgo.Record
	paymentsDLQ []*kgo.Record
}

var scenarioConfig = ProduceConfig{Count: 300, Customers: 12, MalformedShare: 0.1, DuplicateShare: 0.1, Seed: 7}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	c := newCluster(t)
	stats, err := Produce(context.Background(), c.client(t), scenarioConfig)
	require.NoError(t, err)
	require.Equal(t, scenarioConfig.Count, stats.Produced)

	top, err := OrderTopology()
	require.NoError(t, err)
	s := &scenario{c: c, stats: stats, orders: newMemPipeline(top, TopicDLQ)}
	s.orders.run(t, c.readAll(t, TopicOrders))
	s.events, s.dlq = s.orders.out, s.orders.dlq
	require.Len(t, s.events, stats.Valid)
	require.Len(t, s.dlq, stats.Malformed)
	return s
}

// pay computes the payments for the (possibly corrupted) events.
func (s *scenario) pay(t *testing.T) {
	t.Helper()
	top, err := PaymentTopology()
	require.NoError(t, err)
	p := newMemPipeline(top, TopicPaymentsDLQ)
	p.run(t, s.events)
	s.payments, s.paymentsDLQ = p.out, p.dlq
}

func (s *scenario) write(t *testing.T) {
	t.Helper()
	s.c.write(t, s.events)
	s.c.write(t, s.dlq)
	s.c.write(t, s.payments)
	s.c.write(t, s.paymentsDLQ)
}

func (s *scenario) verify(t *testing.T, opts VerifyOptions) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Verify(ctx, s.c.client(t), opts)
	require.NoError(t, err)
	return r
}

func TestVerifyCorrectPipeline(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.pay(t)
	s.write(t)

	// A client with consumer options of its own: Verify must drop them.
	cl := s.c.client(t, kgo.ConsumeTopics(TopicOrders), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	r, err := Verify(context.Background(), cl, VerifyOptions{Payments: true, StableTopics: []string{changelogTopic}})
	require.NoError(t, err)
	require.True(t, r.OK(), "%s", r)
	require.Empty(t, r.Counts)

	require.Equal(t, s.stats.Produced, r.Inputs)
	require.Equal(t, s.stats.Valid, r.Valid)
	require.Equal(t, s.stats.Malformed, r.Malformed)
	require.Equal(t, s.stats.Duplicates, r.Duplicates)
	require.Equal(t, s.stats.Valid, r.Events)
	require.Equal(t, s.stats.Malformed, r.DLQ)
	require.Equal(t, s.stats.Valid, r.Payments)
	require.Contains(t, r.String(), "verify: OK")

	// E4: the topology's state equals the fold.
	customers := s.orders.state(StoreCustomers)
	require.Len(t, r.Expected.Customers, len(customers))
	for id, b := range customers {
		c, err := CustomerSerde().Decode(b)
		require.NoError(t, err)
		require.Equal(t, r.Expected.Customers[id], c, "customer %s", id)
	}
	orderIDs := s.orders.state(StoreOrderIDs)
	require.Len(t, r.Expected.OrderIDs, s.stats.Valid)
	require.Len(t, orderIDs, s.stats.Valid)
	for id, customer := range orderIDs {
		require.Equal(t, r.Expected.OrderIDs[id], string(customer), "order id %s", id)
	}
}

// TestVerifyOrderIDReused feeds an order whose id another customer already
// used: the order service rejects it (same partition here), and Verify
// must say that the input breaks the uniqueness the checks assume.
func TestVerifyOrderIDReused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	val := func(o Order) []byte {
		b, err := json.Marshal(o)
		require.NoError(t, err)
		return b
	}
	in := []*kgo.Record{
		{Topic: TopicOrders, Partition: 0, Key: []byte("c-1"), Value: val(order("o-1", "c-1", 5))},
		{Topic: TopicOrders, Partition: 0, Key: []byte("c-2"), Value: val(order("o-1", "c-2", 7))},
	}
	cl := c.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, cl.ProduceSync(context.Background(), in...).FirstErr())
	top, err := OrderTopology()
	require.NoError(t, err)
	p := newMemPipeline(top, TopicDLQ)
	p.run(t, c.readAll(t, TopicOrders))
	require.Len(t, p.out, 1)
	require.Len(t, p.dlq, 1)
	c.write(t, p.out)
	c.write(t, p.dlq)

	r, err := Verify(context.Background(), c.client(t), VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]int{CheckRead: 1}, r.Counts, "%s", r)
	require.Contains(t, r.String(), `order id "o-1" of customer "c-2" was applied for customer "c-1"`)
	require.Equal(t, 1, r.Malformed)
	require.Equal(t, Expected{Customers: map[string]Customer{"c-1": {1, 5}}, OrderIDs: map[string]string{"o-1": "c-1"}}, r.Expected)
}

func TestVerifyDetectsCorruption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		events       func(t *testing.T, s *scenario) // before payments are computed
		outputs      func(t *testing.T, s *scenario) // after
		want         map[string]int
		wantContains string
	}{
		{
			name:         "event dropped",
			events:       func(_ *testing.T, s *scenario) { s.events = slices.Delete(s.events, 40, 41) },
			want:         map[string]int{CheckE1: 1, CheckE2: 1},
			wantContains: "0 events, want 1",
		},
		{
			name: "event duplicated",
			events: func(_ *testing.T, s *scenario) {
				s.events = slices.Insert(s.events, 41, s.events[40])
			},
			want:         map[string]int{CheckE1: 1, CheckE2: 1, CheckPayments: 1},
			wantContains: "2 events, want 1",
		},
		{
			name: "wrong total",
			events: func(t *testing.T, s *scenario) {
				s.events[40] = editEvent(t, s.events[40], func(ev *Event) { ev.CustomerTotalCents++ })
			},
			want:         map[string]int{CheckE2: 1},
			wantContains: "CustomerTotalCents",
		},
		{
			name: "wrong count",
			events: func(t *testing.T, s *scenario) {
				s.events[40] = editEvent(t, s.events[40], func(ev *Event) { ev.CustomerOrderCount += 2 })
			},
			want:         map[string]int{CheckE2: 1},
			wantContains: "gap or repeat",
		},
		{
			name: "event for an order that was not valid",
			events: func(t *testing.T, s *scenario) {
				s.events = append(s.events, editEvent(t, s.events[40], func(ev *Event) { ev.OrderID = "bogus" }))
			},
			want:         map[string]int{CheckE1: 1, CheckE2: 1},
			wantContains: "not a valid input",
		},
		{
			name: "event not decodable",
			events: func(_ *testing.T, s *scenario) {
				s.events = append(s.events, &kgo.Record{Topic: TopicEvents, Key: []byte("c-0001"), Value: []byte("{}")})
			},
			want:         map[string]int{CheckE1: 1, CheckPayments: 1},
			wantContains: "the payment stage dead-lettered an event",
		},
		{
			name:         "DLQ record missing",
			outputs:      func(_ *testing.T, s *scenario) { s.dlq = s.dlq[1:] },
			want:         map[string]int{CheckE3: 1},
			wantContains: "0 records in orders-dlq, want 1",
		},
		{
			name:         "DLQ record twice",
			outputs:      func(_ *testing.T, s *scenario) { s.dlq = append(s.dlq, s.dlq[3]) },
			want:         map[string]int{CheckE3: 1},
			wantContains: "2 records in orders-dlq, want 1",
		},
		{
			name: "DLQ value altered",
			outputs: func(_ *testing.T, s *scenario) {
				r := *s.dlq[2]
				r.Value = append(slices.Clone(r.Value), ' ')
				s.dlq[2] = &r
			},
			want:         map[string]int{CheckE3: 1},
			wantContains: "differ from the input",
		},
		{
			name: "DLQ names a valid record",
			outputs: func(_ *testing.T, s *scenario) {
				r := *s.dlq[0]
				r.Headers = slices.Clone(r.Headers)
				r.Headers[3].Value = []byte("999999")
				s.dlq[0] = &r
			},
			want:         map[string]int{CheckE3: 2},
			wantContains: "not a malformed input record",
		},
		{
			name: "DLQ header missing",
			outputs: func(_ *testing.T, s *scenario) {
				r := *s.dlq[0]
				r.Headers = r.Headers[1:]
				s.dlq[0] = &r
			},
			want:         map[string]int{CheckE3: 2},
			wantContains: "missing header exactly.error",
		},
		{
			name: "payment attempt 2",
			outputs: func(t *testing.T, s *scenario) {
				s.payments[7] = editPayment(t, s.payments[7], func(p *Payment) { p.Attempt = 2 })
			},
			want:         map[string]int{CheckPayments: 1},
			wantContains: "attempt 2",
		},
		{
			name:         "payment missing",
			outputs:      func(_ *testing.T, s *scenario) { s.payments = slices.Delete(s.payments, 7, 8) },
			want:         map[string]int{CheckPayments: 1},
			wantContains: "0 payments for 1 events",
		},
		{
			name: "payment amount wrong",
			outputs: func(t *testing.T, s *scenario) {
				s.payments[7] = editPayment(t, s.payments[7], func(p *Payment) { p.AmountCents++ })
			},
			want:         map[string]int{CheckPayments: 1},
			wantContains: "event says",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t)
			if tc.events != nil {
				tc.events(t, s)
			}
			s.pay(t)
			if tc.outputs != nil {
				tc.outputs(t, s)
			}
			s.write(t)
			r := s.verify(t, VerifyOptions{Payments: true})
			require.False(t, r.OK())
			require.Equal(t, tc.want, r.Counts, "%s", r)
			require.Contains(t, r.String(), tc.wantContains)
		})
	}
}

func editEvent(t *testing.T, r *kgo.Record, edit func(*Event)) *kgo.Record {
	t.Helper()
	ev, err := DecodeEvent(r.Value)
	require.NoError(t, err)
	edit(&ev)
	v, err := json.Marshal(ev)
	require.NoError(t, err)
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: v}
}

func editPayment(t *testing.T, r *kgo.Record, edit func(*Payment)) *kgo.Record {
	t.Helper()
	p, err := DecodePayment(r.Value)
	require.NoError(t, err)
	edit(&p)
	v, err := json.Marshal(p)
	require.NoError(t, err)
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: v}
}

func TestVerifyWithoutPayments(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.write(t) // no payments

	r := s.verify(t, VerifyOptions{})
	require.True(t, r.OK(), "%s", r)
	require.Contains(t, r.String(), "payments not checked")

	r = s.verify(t, VerifyOptions{Payments: true})
	require.Equal(t, map[string]int{CheckPayments: s.stats.Valid}, r.Counts)
}

func TestVerifyCapsViolations(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.events = nil
	s.write(t)
	r := s.verify(t, VerifyOptions{MaxViolations: 5})
	require.Len(t, r.Violations, 5)
	total := r.Counts[CheckE1] + r.Counts[CheckE2]
	require.Equal(t, s.stats.Valid, r.Counts[CheckE1])
	require.Equal(t, total-5, r.Omitted)
	require.Equal(t, total, r.Total())
	require.Contains(t, r.String(), fmt.Sprintf("and %d more", total-5))
}

// TestVerifyOpenTransaction leaves a transaction open on a topic: Verify
// must report E5, and read_committed must hide the open records.
func TestVerifyOpenTransaction(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{TopicEvents, changelogTopic} {
		t.Run(topic, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t)
			s.pay(t)
			s.write(t)

			open := s.c.txnClient(t)
			require.NoError(t, open.BeginTransaction())
			bogus := editEvent(t, s.events[0], func(ev *Event) { ev.OrderID = "open" })
			bogus.Topic = topic
			require.NoError(t, open.ProduceSync(context.Background(), bogus).FirstErr())

			r := s.verify(t, VerifyOptions{Payments: true, StableTopics: []string{changelogTopic}, IdleTimeout: 2 * time.Second})
			require.Equal(t, map[string]int{CheckE5: 1}, r.Counts, "%s", r)
			require.Contains(t, r.String(), "a transaction is left open")
			require.Equal(t, s.stats.Valid, r.Events)
		})
	}
}

func TestVerifyIgnoresAbortedTransaction(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.pay(t)
	s.write(t)

	cl := s.c.txnClient(t)
	require.NoError(t, cl.BeginTransaction())
	bogus := editEvent(t, s.events[0], func(ev *Event) { ev.OrderID = "aborted" })
	require.NoError(t, cl.ProduceSync(context.Background(), bogus).FirstErr())
	require.NoError(t, cl.EndTransaction(context.Background(), kgo.TryAbort))

	r := s.verify(t, VerifyOptions{Payments: true})
	require.True(t, r.OK(), "%s", r)
	require.Equal(t, s.stats.Valid, r.Events)
}

// TestVerifyStableWait commits the outputs while Verify waits for stable
// offsets.
func TestVerifyStableWait(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.pay(t)
	ctx := context.Background()
	cl := s.c.txnClient(t)
	require.NoError(t, cl.BeginTransaction())
	require.NoError(t, cl.ProduceSync(ctx, cloneRecords(slices.Concat(s.events, s.dlq, s.payments, s.paymentsDLQ))...).FirstErr())

	committed := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() { committed <- cl.EndTransaction(ctx, kgo.TryCommit) })
	r := s.verify(t, VerifyOptions{Payments: true, StableWait: 10 * time.Second})
	require.NoError(t, <-committed)
	require.True(t, r.OK(), "%s", r)
}

func TestVerifyMissingTopic(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	_, err := Verify(context.Background(), c.client(t), VerifyOptions{DLQTopic: "no-such-topic"})
	require.ErrorContains(t, err, "no-such-topic")
}

// TestVerifyOpenTransactionHidesTail leaves the partition ending, below its
// last stable offset, in a record read_committed never shows: an aborted
// transaction whose abort marker was written after another transaction
// opened. Reading cannot see the end there, and must stop after
// IdleTimeout instead of failing or hanging.
func TestVerifyOpenTransactionHidesTail(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.pay(t)
	s.write(t)

	ctx := context.Background()
	bogus := func(id string) *kgo.Record {
		return editEvent(t, s.events[0], func(ev *Event) { ev.OrderID = id })
	}
	aborted, open := s.c.txnClient(t), s.c.txnClient(t)
	require.NoError(t, aborted.BeginTransaction())
	require.NoError(t, aborted.ProduceSync(ctx, bogus("aborted")).FirstErr())
	require.NoError(t, open.BeginTransaction())
	require.NoError(t, open.ProduceSync(ctx, bogus("open")).FirstErr())
	require.NoError(t, aborted.EndTransaction(ctx, kgo.TryAbort))

	start := time.Now()
	r := s.verify(t, VerifyOptions{Payments: true, IdleTimeout: 500 * time.Millisecond})
	require.Equal(t, map[string]int{CheckE5: 1}, r.Counts, "%s", r)
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond)
}

// resetRun is the outputs of an order service whose state was reset at
// the given offsets per partition: each epoch folded by a fresh pipeline,
// as `exactly run --reset-state` rebuilds state from empty.
type resetRun struct {
	events, dlq []*kgo.Record
	last        *memPipeline // the last epoch's pipeline: its state is E4's
}

func runWithResets(t *testing.T, in []*kgo.Record, resets []map[int32]int64) resetRun {
	t.Helper()
	top, err := OrderTopology()
	require.NoError(t, err)
	var out resetRun
	opts := VerifyOptions{Resets: resets}
	for epoch := 0; epoch <= len(resets); epoch++ {
		var recs []*kgo.Record
		for _, r := range in {
			if opts.epoch(r.Partition, r.Offset) == epoch {
				recs = append(recs, r)
			}
		}
		out.last = newMemPipeline(top, TopicDLQ)
		out.last.run(t, recs)
		out.events, out.dlq = append(out.events, out.last.out...), append(out.dlq, out.last.dlq...)
	}
	return out
}

// fractionOffsets returns, per partition of recs, the offset a share f of
// the way through it.
func fractionOffsets(recs []*kgo.Record, f float64) map[int32]int64 {
	ends := make(map[int32]int64)
	for _, r := range recs {
		ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
	}
	out := make(map[int32]int64)
	for p, end := range ends {
		out[p] = int64(float64(end) * f)
	}
	return out
}

// TestVerifyWithResets checks the reset-aware verification: after a state
// reset at offsets R, counts and totals restart from zero for the orders
// at R and later, an order re-sent across the reset is applied (and has an
// event) once more, and the expected state is the fold from the last
// reset on. An instance that went on from its old state after the reset
// (the bug the chaos soak's reset phase looks for) must be caught.
func TestVerifyWithResets(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	stats, err := Produce(context.Background(), c.client(t), ProduceConfig{Count: 600, Customers: 12, MalformedShare: 0.1, DuplicateShare: 0.2, Seed: 11})
	require.NoError(t, err)
	in := c.readAll(t, TopicOrders)
	one := []map[int32]int64{fractionOffsets(in, 0.5)}
	two := []map[int32]int64{fractionOffsets(in, 0.3), fractionOffsets(in, 0.7)}
	top, err := OrderTopology()
	require.NoError(t, err)
	stale := newMemPipeline(top, TopicDLQ) // never reset
	stale.run(t, in)

	for _, tc := range []struct {
		name    string
		written []map[int32]int64 // resets the outputs went through
		told    []map[int32]int64 // resets Verify is told of
		stale   bool              // outputs of a pipeline that ignored the resets
		want    func(t *testing.T, r *Report)
	}{
		{
			name: "no reset", want: func(t *testing.T, r *Report) {
				require.True(t, r.OK(), "%s", r)
				require.Equal(t, stats.Valid, r.Events)
			},
		},
		{name: "one reset", written: one, told: one, want: requireOK},
		{name: "two resets", written: two, told: two, want: requireOK},
		{
			name: "a reset Verify is not told of", written: one,
			want: func(t *testing.T, r *Report) {
				require.Positive(t, r.Counts[CheckE2], "%s", r)
				require.Contains(t, r.String(), "gap or repeat")
			},
		},
		{
			name: "an instance on stale state after the reset", told: one, stale: true,
			want: func(t *testing.T, r *Report) {
				require.Positive(t, r.Counts[CheckE2], "%s", r)
				require.Positive(t, r.Counts[CheckE1], "re-sent orders across the reset must have a second event: %s", r)
				require.Contains(t, r.String(), "gap or repeat")
			},
		},
		{
			name: "the second of two resets missed", written: two[:1], told: two,
			want: func(t *testing.T, r *Report) { require.Positive(t, r.Counts[CheckE2], "%s", r) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			cl := c.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			require.NoError(t, cl.ProduceSync(context.Background(), cloneInputs(in)...).FirstErr())
			out := runWithResets(t, in, tc.written)
			if tc.stale {
				out.events, out.dlq = stale.out, stale.dlq
			}
			c.write(t, out.events)
			c.write(t, out.dlq)
			r, err := Verify(context.Background(), c.client(t), VerifyOptions{Resets: tc.told})
			require.NoError(t, err)
			require.Equal(t, len(tc.told), r.Resets)
			tc.want(t, r)
			if tc.stale || len(tc.told) != len(tc.written) {
				return
			}
			// E4's expectation is the last epoch's state, no more.
			require.Equal(t, len(out.events), r.Valid)
			customers := out.last.state(StoreCustomers)
			require.Len(t, r.Expected.Customers, len(customers))
			for id, b := range customers {
				cust, err := CustomerSerde().Decode(b)
				require.NoError(t, err)
				require.Equal(t, cust, r.Expected.Customers[id], "customer %s", id)
			}
			ids := out.last.state(StoreOrderIDs)
			require.Len(t, r.Expected.OrderIDs, len(ids))
			for id, cust := range ids {
				require.Equal(t, string(cust), r.Expected.OrderIDs[id], "order id %s", id)
			}
		})
	}
	// The scenario must exercise a re-sent order across a reset.
	require.Greater(t, len(runWithResets(t, in, one).events), stats.Valid, "no duplicate straddles the reset: change the seed")
}

func requireOK(t *testing.T, r *Report) {
	t.Helper()
	require.True(t, r.OK(), "%s", r)
	require.Contains(t, r.String(), "state resets")
}

// cloneInputs copies input records with their partitions, for producing
// them again in the same places.
func cloneInputs(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	}
	return out
}

func TestVerifyResetsGoingBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	_, err := Verify(context.Background(), c.client(t), VerifyOptions{Resets: []map[int32]int64{{0: 10}, {0: 5}}})
	require.ErrorContains(t, err, "moves partition 0 back from 10 to 5")
}
