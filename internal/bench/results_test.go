package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	for name, tc := range map[string]struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		"empty":            {nil, 0.5, 0},
		"one value":        {[]time.Duration{ms(7)}, 0.99, ms(7)},
		"p50 of 1..100":    {hundred, 0.50, ms(50)},
		"p99 of 1..100":    {hundred, 0.99, ms(99)},
		"max of 1..100":    {hundred, 1, ms(100)},
		"p50 of four":      {[]time.Duration{ms(1), ms(2), ms(3), ms(4)}, 0.5, ms(2)},
		"p99 of four":      {[]time.Duration{ms(1), ms(2), ms(3), ms(4)}, 0.99, ms(4)},
		"tiny p clamps up": {[]time.Duration{ms(1), ms(2)}, 0.0001, ms(1)},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, percentile(tc.sorted, tc.p))
		})
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{
		0: "0", 7.4: "7", 999.5: "1,000", 12345: "12,345", 1234567.8: "1,234,568", -4321: "-4,321",
	} {
		require.Equal(t, want, thousands(in), "%v", in)
	}
}

// sampleResults is a full set of figures with round numbers.
func sampleResults() *Results {
	m := func(rate float64) *Measurement {
		return &Measurement{Records: 1000, Elapsed: time.Second, RecordsPerSec: rate, Transactions: 10}
	}
	r := &Results{
		Machine: Machine{CPUs: 2, GOMAXPROCS: 2, CPUModel: "Test CPU", MemoryMiB: 1024, GoVersion: "go1.26", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Setup:   Setup{Cluster: "embedded kfake, 3 brokers in this process", Partitions: 6, Orders: 1000, Customers: 10, Seed: 1, EventBytes: 2e6, ChangelogBytes: 5e6},
		Throughput: []Cell{
			{TxnSize: 100, CommitInterval: ms(100), Pipeline: m(8000), Ceiling: m(10000), AtLeastOnce: m(9000)},
			{TxnSize: 1000, CommitInterval: ms(100), Pipeline: m(18000), Ceiling: m(20000), AtLeastOnce: m(20000)},
			{TxnSize: 1000, CommitInterval: time.Second, Pipeline: m(30000), Ceiling: nil, AtLeastOnce: m(25000)},
		},
		Latency: &Latency{Rate: 9000, PeakRate: 18000, Achieved: 8990, Duration: 20 * time.Second, TxnSize: 1000,
			CommitInterval: ms(100), Events: 180000, P50: ms(60), P99: ms(140), Max: ms(300),
			Warmup: 2 * time.Second, WarmupEvents: 18000, WarmupMax: 1500 * time.Millisecond},
		Restore: &Restore{Customers: 1000000, Fill: *m(50000),
			FromEmpty:      RestoreRun{Records: 1000000, Restoring: 2 * time.Second, Ready: 3 * time.Second, RecordsPerSec: 500000},
			FromCheckpoint: RestoreRun{Ready: ms(400)}},
		RSS:     &RSS{Customers: 1000000, Orders: 10000, PeakBytes: 250e6, Ready: 5 * time.Second},
		Scaling: []Scale{{Instances: 1, TxnSize: 1000, CommitInterval: ms(100), Measurement: *m(20000)}, {Instances: 2, TxnSize: 1000, CommitInterval: ms(100), Measurement: *m(30000)}},
		Elapsed: time.Minute,
	}
	r.Throughput[0].Pipeline.Requests = map[string]RequestStat{
		"Produce": {Count: 35, Total: 35 * ms(47)},
		"EndTxn":  {Count: 10, Total: 10 * ms(5)},
		"Fetch":   {Count: 4, Total: 4 * ms(250)}, // not one a transaction waits on
	}
	r.Throughput[0].AtLeastOnce.Requests = map[string]RequestStat{"OffsetCommit": {Count: 10, Total: 10 * ms(3)}}
	r.Targets = r.evaluate()
	return r
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, sampleResults().WriteTable(&b))
	out := b.String()
	for _, want := range []string{
		"machine: 2 CPUs (GOMAXPROCS 2), Test CPU, 1024 MiB",
		"cluster: embedded kfake, 3 brokers in this process; 6 partitions",
		"2.0 MB of event and 5.0 MB of changelog values",
		"txn size  commit  pipeline  ceiling  at-least-once  pipeline/ceiling  eos overhead  aborts",
		"     100   100ms     8,000   10,000          9,000              0.80           11%       0",
		"    1000      1s    30,000        -         25,000                 -          -20%       0",
		"p50 60ms  p99 140ms  max 300ms  (180000 events)",
		"half the pipeline's 18,000 records/s at this txn size and commit",
		"not counted: 18000 events of a 2s warm-up before, max 1.5s",
		"empty state dir  1000000         2s    500,000        3s",
		"local checkpoint        0         0s          -     400ms",
		"250.0 MB (VmHWM)",
		"          2     30,000  1.50       0",
		"    100  100ms pipeline       Produce 3.5 × 47ms, EndTxn 1.0 × 5ms\n",
		"    100  100ms at-least-once  OffsetCommit 1.0 × 3ms\n",
	} {
		require.Contains(t, out, want)
	}
}

func TestRequestProfile(t *testing.T) {
	t.Parallel()
	p := NewRequestProfile()
	produce, endTxn := (&kmsg.ProduceRequest{}).Key(), (&kmsg.EndTxnRequest{}).Key()
	p.OnBrokerE2E(kgo.BrokerMetadata{}, produce, kgo.BrokerE2E{TimeToWrite: ms(1), ReadWait: ms(40), TimeToRead: ms(9)})
	p.OnBrokerE2E(kgo.BrokerMetadata{}, produce, kgo.BrokerE2E{TimeToWrite: ms(1), ReadWait: ms(20), TimeToRead: ms(9)})
	p.OnBrokerE2E(kgo.BrokerMetadata{}, endTxn, kgo.BrokerE2E{ReadWait: ms(4)})
	p.OnBrokerE2E(kgo.BrokerMetadata{}, endTxn, kgo.BrokerE2E{ReadWait: ms(400), ReadErr: errors.New("connection reset")})
	got := p.Stats()
	require.Equal(t, map[string]RequestStat{
		"Produce": {Count: 2, Total: ms(80), Max: ms(50)},
		"EndTxn":  {Count: 1, Total: ms(4), Max: ms(4)}, // a failed request is not counted
	}, got)
	require.Equal(t, ms(40), got["Produce"].Mean())
	require.Equal(t, "Produce 1.0 × 40ms, EndTxn 0.5 × 4ms", requestSummary(&Measurement{Transactions: 2, Requests: got}))
	require.Empty(t, requestSummary(&Measurement{Requests: got}), "no transaction, nothing per transaction")
}

func TestTargets(t *testing.T) {
	t.Parallel()
	got := map[string]Target{}
	for _, tg := range sampleResults().Targets {
		got[tg.Name] = tg
	}
	require.Len(t, got, 5)
	require.True(t, got["pipeline vs ceiling"].Met, "worst ratio 0.80, kfake's target 0.5")
	require.Equal(t, ">= 0.50 at equal transaction size (worst cell)", got["pipeline vs ceiling"].Want)
	require.Equal(t, "0.80 at txn 100, commit 100ms", got["pipeline vs ceiling"].Got)
	require.True(t, got["exactly-once overhead"].Met, "worst overhead 11% (txn 100), not 10% (txn 1000)")
	require.Equal(t, "11% at txn 100", got["exactly-once overhead"].Got)
	require.False(t, got["restore rate"].Met, "500,000 records/s against 3,000,000")
	require.True(t, got["p99 latency"].Met, "140ms <= 150ms")
	require.True(t, got["peak RSS"].Met)

	r := sampleResults()
	r.Setup.Cluster = "brokers 127.0.0.1:9092"
	r.Restore.FromEmpty.RecordsPerSec = 3_000_000
	r.Latency.P99 = ms(151)
	r.RSS.Customers = 1000
	for _, tg := range r.evaluate() {
		switch tg.Name {
		case "pipeline vs ceiling":
			require.False(t, tg.Met, "0.80 on a real cluster, whose target is 0.9")
		case "restore rate":
			require.True(t, tg.Met)
		case "p99 latency":
			require.False(t, tg.Met)
		case "peak RSS":
			require.Contains(t, tg.Got, "at 1000 customers only")
		}
	}
	require.Empty(t, (&Results{}).evaluate(), "nothing measured, nothing to report")
}

func TestResultsJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(sampleResults())
	require.NoError(t, err)
	var back Results
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, sampleResults().Throughput, back.Throughput)
	require.True(t, strings.Contains(string(b), `"commit_interval_ns":100000000`), string(b))
}

func TestSummarizeWindows(t *testing.T) {
	t.Parallel()
	begin := time.Unix(100, 0)
	var samples []latencySample
	// 10 s of orders, one per 10 ms; latency grows with produce time.
	for i := range 1000 {
		at := time.Duration(i) * 10 * time.Millisecond
		samples = append(samples, latencySample{produced: begin.Add(at), latency: ms(10) + at/10})
	}
	all, windows := summarize(samples, 10*time.Second)
	require.Equal(t, 1000, all.Events)
	require.Equal(t, ms(10), percentile([]time.Duration{ms(10)}, 1))
	require.Equal(t, ms(10)+ms(999), all.Max)
	require.Len(t, windows, latencyWindows)
	for i, w := range windows {
		require.Equal(t, 200, w.Events, "window %d", i)
		require.Equal(t, time.Duration(i)*2*time.Second, w.From)
		if i > 0 {
			require.Greater(t, w.P99, windows[i-1].P99, "a growing tail shows window by window")
		}
	}
}

func TestLatencyRateIsHalfItsOwnCell(t *testing.T) {
	t.Parallel()
	r := &runner{cfg: Config{LatencyTxnSize: 1000, LatencyCommitInterval: ms(100)}}
	cells := sampleResults().Throughput // 8,000 at txn 100, 18,000 at txn 1000, 30,000 at txn 1000 and 1 s
	cells = append(cells, Cell{TxnSize: 10000, CommitInterval: ms(100), Pipeline: &Measurement{RecordsPerSec: 40000}})
	rate, peak, err := r.latencyRate(context.Background(), cells)
	require.NoError(t, err)
	require.InDelta(t, 18000, peak, 0, "the cell of the latency run's txn size and commit, not the fastest")
	require.Equal(t, 9000, rate)

	r.cfg.LatencyRate = 1234
	rate, peak, err = r.latencyRate(context.Background(), cells)
	require.NoError(t, err)
	require.Equal(t, 1234, rate)
	require.Zero(t, peak, "set by hand")
}

func TestSplitWarmup(t *testing.T) {
	t.Parallel()
	begin := time.Unix(100, 0)
	var samples []latencySample
	for i := range 10 { // out of order, as a consumer of several partitions reads them
		at := time.Duration((i*7)%10) * time.Second
		samples = append(samples, latencySample{produced: begin.Add(at), latency: ms(100) + at/1000})
	}
	rest, warm := splitWarmup(samples, 3)
	require.Len(t, rest, 7)
	for _, s := range rest {
		require.False(t, s.produced.Before(begin.Add(3*time.Second)), "the first three orders by produce time are the warm-up")
	}
	require.Equal(t, 3, warm.Events)
	require.Equal(t, ms(102), warm.Max)
	rest, warm = splitWarmup(samples, 0)
	require.Len(t, rest, 10)
	require.Zero(t, warm.Events)
}

func TestMedian(t *testing.T) {
	t.Parallel()
	runs := []Measurement{{RecordsPerSec: 30, Aborted: 3}, {RecordsPerSec: 10, Aborted: 1}, {RecordsPerSec: 20, Aborted: 2}}
	m := median(runs)
	require.InDelta(t, 20, m.RecordsPerSec, 0)
	require.Equal(t, int64(2), m.Aborted, "the median run's own figures")
	require.Equal(t, []float64{30, 10, 20}, m.Runs, "every run's rate, in run order")
	require.InDelta(t, 10, median(runs[:2]).RecordsPerSec, 0, "the lower middle of an even count")
	require.Nil(t, median(runs[:1]).Runs, "a single run lists no runs")
	require.Equal(t, "x-r2", runName("x", 1, 3))
	require.Equal(t, "x", runName("x", 0, 1))
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, err := measure(ctx, time.Minute, 10, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		for range 5 {
			fl.add(2)
		}
		<-ctx.Done() // stopped once the target is reached
		return txnCounts{committed: 5}, nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(10), m.Records)
	require.Equal(t, int64(5), m.Transactions)
	require.Positive(t, m.RecordsPerSec)
	require.LessOrEqual(t, m.FirstCommit, m.Elapsed)

	_, err = measure(ctx, time.Minute, 10, func(context.Context, *finishLine) (txnCounts, error) {
		return txnCounts{}, errors.New("boom")
	})
	require.ErrorContains(t, err, "boom")
	_, err = measure(ctx, time.Minute, 10, func(_ context.Context, fl *finishLine) (txnCounts, error) {
		fl.add(3)
		return txnCounts{}, nil
	})
	require.ErrorContains(t, err, "stopped with 3 of 10 records committed")
	_, err = measure(ctx, 10*time.Millisecond, 10, func(ctx context.Context, _ *finishLine) (txnCounts, error) {
		<-ctx.Done()
		return txnCounts{}, nil
	})
	require.ErrorIs(t, err, errRunTimeout)
}
