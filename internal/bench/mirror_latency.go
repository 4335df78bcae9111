package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencies measures the mirror's end-to-end latency, then the ceiling's
// at the same rate.
func (r *mirrorRunner) latencies(ctx context.Context, mr *MirrorResults) error {
	c := &r.cfg
	rate, peak, err := r.latencyRate(ctx, mr)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		copier string
		run    copyFunc
	}{{PartMirror, r.runMirrors}, {PartCeiling, r.runCeiling}} {
		if x.copier == PartCeiling && !c.runs(PartCeiling) {
			continue
		}
		l, err := r.latency(ctx, x.copier, x.run, rate)
		if err != nil {
			return err
		}
		l.PeakRate = peak
		mr.Latency = append(mr.Latency, *l)
	}
	return nil
}

// latencyRate returns the offered rate of the latency runs and the peak it
// is half of (0 when set by hand): the mirror's throughput at the latency
// run's transaction size and commit interval, measured here if the grid
// did not.
func (r *mirrorRunner) latencyRate(ctx context.Context, mr *MirrorResults) (int, float64, error) {
	c := &r.cfg
	if c.LatencyRate > 0 {
		return c.LatencyRate, 0, nil
	}
	var peak float64
	for _, cell := range mr.Throughput {
		if cell.Mirror != nil && cell.TxnSize == c.LatencyTxnSize && cell.CommitInterval == c.LatencyCommitInterval {
			peak = cell.Mirror.RecordsPerSec
		}
	}
	if peak == 0 {
		spec := copySpec{name: "mirror-peak", txnSize: c.LatencyTxnSize, interval: c.LatencyCommitInterval, instances: 1}
		m, err := r.throughput(ctx, r.runMirrors, spec, mr.Bytes)
		if err != nil {
			return 0, 0, err
		}
		peak = m.RecordsPerSec
	}
	return max(1, int(peak/2)), peak, nil
}

// latency starts one copier on a fresh source topic, waits until it is
// ready, then produces records at rate for LatencyWarmup + LatencyDuration,
// each carrying its send time; a read_committed consumer on the target
// topic takes, per record, the time it received it minus that send time.
func (r *mirrorRunner) latency(ctx context.Context, copier string, run copyFunc, rate int) (*MirrorLatency, error) {
	c := &r.cfg
	count := max(1, int(float64(rate)*c.LatencyDuration.Seconds()))
	warm := int(float64(rate) * c.LatencyWarmup.Seconds())
	spec := copySpec{name: "mirror-latency-" + copier, txnSize: c.LatencyTxnSize, interval: c.LatencyCommitInterval,
		instances: 1, ready: make(chan struct{})}
	spec.source = c.TopicPrefix + spec.name
	target := r.targetTopic(spec.name, spec.source)
	c.progressf("latency of the %s: %d records at %d/s after %d warm-up records, txn %d, commit %s",
		copier, count, rate, warm, c.LatencyTxnSize, c.LatencyCommitInterval)
	defer r.src.cleanup(ctx, []string{spec.source})
	defer r.cleanup(ctx, spec.name, target)
	if err := r.src.createTopic(ctx, spec.source, c.Partitions, false); err != nil {
		return nil, err
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fl := newFinishLine(1 << 62) // counts only
	var wg sync.WaitGroup
	var counts txnCounts
	var runErr error
	wg.Go(func() { counts, runErr = run(cctx, spec, fl) })
	stop := func() error {
		cancel()
		wg.Wait()
		return runErr
	}
	if err := waitReady(ctx, spec.ready, c.RunTimeout); err != nil {
		return nil, errors.Join(err, stop())
	}
	before := fl.count()
	samples, achieved, err := r.measureMirrorLatency(ctx, spec.source, target, rate, warm+count)
	if err = errors.Join(err, stop()); err != nil {
		return nil, fmt.Errorf("latency of the %s: %w", copier, err)
	}
	samples, warmed := splitWarmup(samples, warm)
	all, windows := summarize(samples, c.LatencyDuration)
	l := &MirrorLatency{
		Copier: copier, Rate: rate, Achieved: achieved, Duration: c.LatencyDuration,
		Warmup: c.LatencyWarmup, WarmupEvents: warmed.Events, WarmupMax: warmed.Max,
		TxnSize: c.LatencyTxnSize, CommitInterval: c.LatencyCommitInterval,
		Events: all.Events, P50: all.P50, P99: all.P99, Max: all.Max, Windows: windows,
		Transactions: counts.committed, Copied: fl.count() - before,
	}
	c.progressf("  p50 %s p99 %s max %s over %d records; p99 per %s of send time: %s; %d transactions",
		round(l.P50), round(l.P99), round(l.Max), l.Events, round(c.LatencyDuration/latencyWindows), windowP99s(l.Windows), l.Transactions)
	return l, nil
}

// waitReady waits until ready is closed.
func waitReady(ctx context.Context, ready chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("copier not ready within %s", timeout)
	}
}

// measureMirrorLatency produces count records to source at rate, each
// value starting with its send time (Unix nanoseconds), and collects the
// latency of each from target; it returns them with the rate achieved.
func (r *mirrorRunner) measureMirrorLatency(ctx context.Context, source, target string, rate, count int) ([]latencySample, float64, error) {
	c := &r.cfg
	cons, err := r.tgt.client(kgo.ConsumeTopics(target),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, 0, err
	}
	defer cons.Close()
	prod, err := r.src.client(kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0))
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
				if len(rec.Value) < 8 {
					return
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(rec.Value)))
				samples = append(samples, latencySample{produced: sent, latency: now.Sub(sent)})
			})
		}
	})
	begin := time.Now()
	produced, err := producePaced(ctx, prod, source, c.Partitions, c.MirrorValueBytes, rate, count)
	achieved := float64(produced) / time.Since(begin).Seconds()
	if err != nil {
		cancel()
		wg.Wait()
		return nil, 0, fmt.Errorf("producing the latency input: %w", err)
	}
	drain := time.AfterFunc(30*time.Second+10*c.LatencyCommitInterval, cancel)
	wg.Wait()
	drain.Stop()
	if len(samples) < count {
		return nil, 0, fmt.Errorf("%d of %d records read from the target", len(samples), count)
	}
	return samples, achieved, nil
}

// producePaced produces count records of valueBytes to topic at rate,
// round robin over its partitions, each value starting with its send time;
// it returns how many were acknowledged.
func producePaced(ctx context.Context, cl *kgo.Client, topic string, partitions int32, valueBytes, rate, count int) (int, error) {
	var errs kgo.FirstErrPromise
	begin := time.Now()
	for i := range count {
		if ahead := time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(rate))); ahead > time.Millisecond {
			if !sleep(ctx, ahead) {
				return i, ctx.Err()
			}
		}
		v := make([]byte, valueBytes)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		cl.Produce(ctx, mirrorRecord(topic, i, partitions, v), errs.Promise())
	}
	if err := cl.Flush(ctx); err != nil {
		return count, err
	}
	return count, errs.Err()
}
