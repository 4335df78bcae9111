package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// percentile returns the p-th quantile (0 < p <= 1) of sorted values by the
// nearest-rank method: the smallest value with at least p of the values at
// or below it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyRate returns the produce rate of the latency run and the peak it
// is half of (0 when the rate is set by hand): the pipeline's throughput
// at the latency run's own transaction size and commit interval, measured
// here if the grid did not. The best cell of the grid would not do: on a
// real cluster larger transactions run much faster, and half of their
// figure can be near the saturation of the latency run's configuration,
// which then measures a queue.
func (r *runner) latencyRate(ctx context.Context, cells []Cell) (int, float64, error) {
	c := &r.cfg
	if c.LatencyRate > 0 {
		return c.LatencyRate, 0, nil
	}
	var peak float64
	for _, cell := range cells {
		if cell.Pipeline != nil && cell.TxnSize == c.LatencyTxnSize && cell.CommitInterval == c.LatencyCommitInterval {
			peak = cell.Pipeline.RecordsPerSec
		}
	}
	if peak == 0 {
		m, err := r.pipeline(ctx, "peak", c.LatencyTxnSize, c.LatencyCommitInterval, 1)
		if err != nil {
			return 0, 0, err
		}
		peak = m.RecordsPerSec
	}
	return max(1, int(peak/2)), peak, nil
}

// latency produces orders at a fixed rate into a fresh input while one
// instance runs, and measures, for every event, the time from its order's
// produce timestamp (the event carries it) to a read_committed consumer
// receiving it.
func (r *runner) latency(ctx context.Context, cells []Cell) (*Latency, error) {
	c := &r.cfg
	rate, peak, err := r.latencyRate(ctx, cells)
	if err != nil {
		return nil, err
	}
	count := max(1, int(float64(rate)*c.LatencyDuration.Seconds()))
	warm := int(float64(rate) * c.LatencyWarmup.Seconds())
	// As many orders per customer, warm-up included, as the throughput
	// input has: the order service's state grows with them.
	customers := max(1, int(math.Round(float64(warm+count)*float64(c.Customers)/float64(c.Orders))))
	c.progressf("latency: %d orders over %d customers at %d/s after %d warm-up orders, txn %d, commit %s", count, customers, rate, warm, c.LatencyTxnSize, c.LatencyCommitInterval)
	a := newApp(c.TopicPrefix+"latency", c.TopicPrefix+"latency-orders")
	defer r.cluster.cleanup(ctx, append(a.outputs(), a.topics.Orders), a.group)
	if err := r.cluster.createTopic(ctx, a.topics.Orders, c.Partitions, false); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(c.Dir, "exactly-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var wg sync.WaitGroup
	defer wg.Wait() // the instance stops before its directory and topics go
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var txns txnDurations
	spec := instanceSpec{app: a, dir: dir, txnSize: c.LatencyTxnSize, interval: c.LatencyCommitInterval,
		hooks: processor.Hooks{OnCommit: txns.add}}
	inst := r.startReady(ctx, &wg, spec, "i1")
	if err := inst.wait(ctx, c.RunTimeout); err != nil {
		return nil, err
	}
	samples, achieved, err := r.measureLatency(ctx, a, rate, warm+count, customers)
	cancel()
	if err = errors.Join(err, inst.stopped()); err != nil {
		return nil, err
	}
	samples, warmed := splitWarmup(samples, warm)
	all, windows := summarize(samples, c.LatencyDuration)
	l := &Latency{
		Rate: rate, PeakRate: peak, Achieved: achieved, Duration: c.LatencyDuration, Customers: customers,
		Warmup: c.LatencyWarmup, WarmupEvents: warmed.Events, WarmupMax: warmed.Max,
		TxnSize: c.LatencyTxnSize, CommitInterval: c.LatencyCommitInterval, Events: all.Events,
		P50: all.P50, P99: all.P99, Max: all.Max, Windows: windows,
	}
	l.Transactions, l.TxnP99, l.TxnMax = txns.summary()
	c.progressf("  p50 %s p99 %s max %s over %d events; p99 per %s of produce time: %s; %d transactions, p99 %s, max %s",
		round(l.P50), round(l.P99), round(l.Max), l.Events, round(c.LatencyDuration/latencyWindows), l.windowP99s(),
		l.Transactions, round(l.TxnP99), round(l.TxnMax))
	return l, nil
}

// readyInstance is a processor started by startReady.
type readyInstance struct {
	ready chan struct{} // closed once every partition was restored
	done  chan error    // Run's result
}

// startReady starts one processor of spec on wg. It is ready once every
// partition was restored.
func (r *runner) startReady(ctx context.Context, wg *sync.WaitGroup, spec instanceSpec, id string) *readyInstance {
	in := &readyInstance{ready: make(chan struct{}), done: make(chan error, 1)}
	var restored atomic.Int32
	var once sync.Once
	prev := spec.hooks.OnRestore
	spec.hooks.OnRestore = func(ri processor.RestoreInfo) {
		if prev != nil {
			prev(ri)
		}
		// Ready once every store partition was restored: OnRestore
		// reports each store of each partition.
		if restored.Add(1) == r.cfg.Partitions*int32(len(orders.OrderStores())) {
			once.Do(func() { close(in.ready) })
		}
	}
	p, err := r.newProcessor(spec, id)
	if err != nil {
		in.done <- err
		return in
	}
	wg.Go(func() { in.done <- p.Run(ctx) })
	return in
}

// wait waits until the instance is ready; it fails if Run ends first.
func (in *readyInstance) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-in.ready:
		return nil
	case err := <-in.done:
		in.done <- err
		return errors.Join(errors.New("instance stopped before it was ready"), err)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("instance not ready within %s", timeout)
	}
}

// stopped returns Run's error once it returned (after ctx was cancelled).
func (in *readyInstance) stopped() error {
	err := <-in.done
	in.done <- err
	return err
}

// measureLatency produces count orders at rate and collects the latency
// of every event; it returns them with the produce rate achieved.
func (r *runner) measureLatency(ctx context.Context, a app, rate, count, customers int) ([]latencySample, float64, error) {
	c := &r.cfg
	cons, err := r.cluster.client(kgo.ConsumeTopics(a.topics.Events),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, 0, err
	}
	defer cons.Close()
	prod, err := r.cluster.client()
	if err != nil {
		return nil, 0, err
	}
	defer prod.Close()

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	samples := make([]latencySample, 0, count)
	var wg sync.WaitGroup
	wg.Go(func() {
		for len(samples) < count && cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				samples = append(samples, latencySample{produced: rec.Timestamp, latency: now.Sub(rec.Timestamp)})
			})
		}
	})
	begin := time.Now()
	st, err := orders.Produce(ctx, prod, orders.ProduceConfig{
		Count: count, Customers: customers, Rate: rate, Seed: c.Seed + 1, Topic: a.topics.Orders,
	})
	achieved := float64(st.Produced) / time.Since(begin).Seconds()
	if err != nil {
		cancel()
		wg.Wait()
		return nil, 0, fmt.Errorf("producing the latency input: %w", err)
	}
	drain := time.AfterFunc(30*time.Second+10*c.LatencyCommitInterval, cancel)
	wg.Wait()
	drain.Stop()
	if len(samples) < count {
		return nil, 0, fmt.Errorf("latency run: %d of %d events read", len(samples), count)
	}
	return samples, achieved, nil
}

// splitWarmup returns the samples of all but the first warm orders by
// produce time, and the summary of those first ones.
func splitWarmup(samples []latencySample, warm int) ([]latencySample, LatencyWindow) {
	slices.SortStableFunc(samples, func(a, b latencySample) int { return a.produced.Compare(b.produced) })
	warm = min(warm, len(samples))
	lats := make([]time.Duration, warm)
	for i, s := range samples[:warm] {
		lats[i] = s.latency
	}
	return samples[warm:], window(lats, 0, 0)
}

// latencySample is one event's latency and its order's produce time.
type latencySample struct {
	produced time.Time
	latency  time.Duration
}

// latencyWindows is the number of equal windows of produce time the
// latency run reports percentiles for: a tail that grows from window to
// window is a queue building up (the rate is above what the pipeline
// sustains), a tail in one window a stall.
const latencyWindows = 5

// summarize returns the percentiles of all samples and per window of
// produce time over d from the first order.
func summarize(samples []latencySample, d time.Duration) (all LatencyWindow, windows []LatencyWindow) {
	var begin time.Time
	for i, s := range samples {
		if i == 0 || s.produced.Before(begin) {
			begin = s.produced
		}
	}
	lats := make([]time.Duration, len(samples))
	per := make([][]time.Duration, latencyWindows)
	for i, s := range samples {
		lats[i] = s.latency
		w := int(s.produced.Sub(begin) * latencyWindows / d)
		w = min(max(w, 0), latencyWindows-1)
		per[w] = append(per[w], s.latency)
	}
	all = window(lats, 0, d)
	for i, ls := range per {
		windows = append(windows, window(ls, time.Duration(i)*d/latencyWindows, d/latencyWindows))
	}
	return all, windows
}

func window(lats []time.Duration, from, d time.Duration) LatencyWindow {
	slices.Sort(lats)
	return LatencyWindow{From: from, Duration: d, Events: len(lats),
		P50: percentile(lats, 0.50), P99: percentile(lats, 0.99), Max: percentile(lats, 1)}
}

// txnDurations collects the durations of committed transactions (from
// Begin to the local state applied) from the OnCommit hook: a stall inside
// the instance shows there, a slow consumer does not.
type txnDurations struct {
	mu sync.Mutex
	ds []time.Duration
}

func (t *txnDurations) add(ti processor.TxnInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ds = append(t.ds, ti.Duration)
}

func (t *txnDurations) summary() (n int, p99, maxD time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ds := slices.Clone(t.ds)
	slices.Sort(ds)
	return len(ds), percentile(ds, 0.99), percentile(ds, 1)
}
