package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/mirror"
)

// The mirror suite (Config.Suite = SuiteMirror) measures mirror.Mirror
// through its public API only (New, Run, Stats, Close):
//
//   - throughput: the source topic is pre-filled once with MirrorRecords
//     records over Partitions partitions; every run starts fresh mirror
//     instances (a fresh name: source group, offsets topic, target topic)
//     and times them from their start until their Stats count every record
//     committed to the target; the target topic is then read back
//     (read_committed) and must hold exactly that many records;
//   - at the same transaction size and commit interval, the ceiling: a
//     bare loop (mirror_ceiling.go) that reads the same source topic
//     read_committed and copies it in target transactions with nothing
//     else: no group, no positions, no ownership;
//   - end-to-end latency at a fixed offered rate (mirror_latency.go);
//   - throughput with several instances in one mirror.
//
// The source and target are two embedded kfake clusters unless Brokers
// (and TargetBrokers) name real ones.

// mirrorRunner holds the mirror suite's clusters and source topic.
type mirrorRunner struct {
	cfg      Config
	src, tgt *cluster // the same cluster when only Brokers is set
	input    string   // the pre-filled source topic
}

// sameCluster reports whether source and target are one cluster.
func (r *mirrorRunner) sameCluster() bool { return r.src == r.tgt }

// runMirror runs the mirror suite into res.
func runMirror(ctx context.Context, cfg Config, res *Results) error {
	src, err := openCluster(ctx, &cfg)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.close()
	tgt := src
	if len(cfg.TargetBrokers) > 0 || len(cfg.Brokers) == 0 {
		tc := cfg
		tc.Brokers, tc.Security = cfg.TargetBrokers, cfg.TargetSecurity
		if tgt, err = openCluster(ctx, &tc); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer tgt.close()
	}
	r := &mirrorRunner{cfg: cfg, src: src, tgt: tgt, input: cfg.TopicPrefix + "mirror-input"}
	mr := &MirrorResults{
		Source: src.describe(cfg.KfakeBrokers), Target: tgt.describe(cfg.KfakeBrokers), SameCluster: r.sameCluster(),
		TargetTopics: r.targetTopic("<run>", "<source topic>"), Partitions: cfg.Partitions,
		ValueBytes: cfg.MirrorValueBytes,
	}
	switch {
	case r.sameCluster():
		mr.Target = "the source cluster"
	case tgt.fake != nil:
		mr.Target = "another " + mr.Target
	}
	res.Mirror = mr
	res.Setup = Setup{Cluster: mr.Source, Partitions: cfg.Partitions, Repeat: cfg.repeat()}
	c := &r.cfg
	c.progressf("mirror: source %s, target %s; target topics %s", mr.Source, mr.Target, mr.TargetTopics)
	if c.runs(PartMirror) || c.runs(PartCeiling) || c.runs(PartScaling) || c.runs(PartLatency) && c.LatencyRate == 0 {
		if mr.Records, mr.Bytes, err = r.fill(ctx); err != nil {
			return err
		}
	}
	if err := r.grid(ctx, mr); err != nil {
		return err
	}
	if c.runs(PartScaling) {
		if err := r.scaling(ctx, mr); err != nil {
			return err
		}
	}
	if c.runs(PartLatency) {
		if err := r.latencies(ctx, mr); err != nil {
			return err
		}
	}
	return nil
}

// targetTopic names the target topic of source topic src in run name.
func (r *mirrorRunner) targetTopic(name, src string) string { return r.renamePrefix(name) + src }

// renamePrefix is the mirror's RenamePrefix in run name: every run writes
// a target topic of its own, so that each copies the whole source.
func (r *mirrorRunner) renamePrefix(name string) string { return r.cfg.TopicPrefix + name + "." }

// fill creates the source topic and writes MirrorRecords records to it,
// round robin over its partitions; it returns their count and key and
// value bytes.
func (r *mirrorRunner) fill(ctx context.Context) (int64, int64, error) {
	c := &r.cfg
	if err := r.src.createTopic(ctx, r.input, c.Partitions, false); err != nil {
		return 0, 0, err
	}
	cl, err := r.src.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	begin := time.Now()
	var errs kgo.FirstErrPromise
	value := make([]byte, c.MirrorValueBytes)
	for i := range c.MirrorRecords {
		cl.Produce(ctx, mirrorRecord(r.input, i, c.Partitions, value), errs.Promise())
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if err := errs.Err(); err != nil {
		return 0, 0, fmt.Errorf("filling %s: %w", r.input, err)
	}
	n := int64(c.MirrorRecords)
	bytes := n * int64(8+c.MirrorValueBytes)
	c.progressf("input: %d records of %d bytes (8-byte key) in %d partitions, %s, written in %s",
		n, 8+c.MirrorValueBytes, c.Partitions, mb(bytes), round(time.Since(begin)))
	return n, bytes, nil
}

// mirrorRecord is record i of a source topic: an 8-byte key i, value v,
// partition i modulo partitions.
func mirrorRecord(topic string, i int, partitions int32, v []byte) *kgo.Record {
	return &kgo.Record{
		Topic: topic, Partition: int32(i % int(partitions)),
		Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: v,
	}
}

// grid measures the mirror and the ceiling at every transaction size and
// commit interval, interleaved and repeated in rounds as the pipeline's grid.
func (r *mirrorRunner) grid(ctx context.Context, mr *MirrorResults) error {
	c := &r.cfg
	if !c.runs(PartMirror) && !c.runs(PartCeiling) {
		return nil
	}
	c.progressf("throughput over %d records", mr.Records)
	for _, interval := range c.CommitIntervals {
		for _, size := range c.TxnSizes {
			cell := MirrorCell{TxnSize: size, CommitInterval: interval}
			suffix := fmt.Sprintf("txn%d-%s", size, interval)
			variants := []struct {
				part string
				dst  **MirrorMeasurement
				run  copyFunc
				all  []MirrorMeasurement
			}{
				{part: PartMirror, dst: &cell.Mirror, run: r.runMirrors},
				{part: PartCeiling, dst: &cell.Ceiling, run: r.runCeiling},
			}
			for round := range c.repeat() {
				for i := range variants {
					v := &variants[i]
					if !c.runs(v.part) {
						continue
					}
					spec := copySpec{name: runName("mirror-"+v.part+"-"+suffix, round, c.repeat()), txnSize: size, interval: interval, instances: 1}
					m, err := r.throughput(ctx, v.run, spec, mr.Bytes)
					if err != nil {
						return err
					}
					v.all = append(v.all, m)
				}
			}
			for _, v := range variants {
				if len(v.all) > 0 {
					m := medianMirror(v.all)
					*v.dst = &m
				}
			}
			mr.Throughput = append(mr.Throughput, cell)
		}
	}
	return nil
}

// scaling measures the mirror with every instance count of Instances.
func (r *mirrorRunner) scaling(ctx context.Context, mr *MirrorResults) error {
	c := &r.cfg
	c.progressf("instances (txn %d, commit %s)", c.ScaleTxnSize, c.ScaleCommitInterval)
	all := make([][]MirrorMeasurement, len(c.Instances))
	for round := range c.repeat() {
		for i, n := range c.Instances {
			spec := copySpec{name: runName(fmt.Sprintf("mirror-scale-%d-instances", n), round, c.repeat()),
				txnSize: c.ScaleTxnSize, interval: c.ScaleCommitInterval, instances: n}
			m, err := r.throughput(ctx, r.runMirrors, spec, mr.Bytes)
			if err != nil {
				return err
			}
			all[i] = append(all[i], m)
		}
	}
	for i, n := range c.Instances {
		mr.Scaling = append(mr.Scaling, MirrorScale{Instances: n, TxnSize: c.ScaleTxnSize, CommitInterval: c.ScaleCommitInterval, Measurement: medianMirror(all[i])})
	}
	return nil
}

// copySpec configures one run of a copier.
type copySpec struct {
	name      string // names the run: mirror name, rename prefix
	source    string // the source topic; empty is the pre-filled input
	txnSize   int
	interval  time.Duration
	instances int // mirror instances; the bare loop is always one
	prof      *RequestProfile
	// ready, if not nil, is closed once the copier owns every source
	// partition (the mirror) or has its producer initialized (the loop).
	ready chan struct{}
}

// copyFunc copies spec's source topic to its target topic until ctx is
// done, adding the records it committed to fl. It returns nil when stopped
// by ctx.
type copyFunc func(ctx context.Context, spec copySpec, fl *finishLine) (txnCounts, error)

// throughput times copy over the whole input and checks that the target
// then holds it exactly.
func (r *mirrorRunner) throughput(ctx context.Context, run copyFunc, spec copySpec, inputBytes int64) (MirrorMeasurement, error) {
	c := &r.cfg
	spec.source, spec.prof = r.input, NewRequestProfile()
	target := r.targetTopic(spec.name, r.input)
	defer r.cleanup(ctx, spec.name, target)
	m, err := measure(ctx, c.RunTimeout, int64(c.MirrorRecords), func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		return run(ctx, spec, fl)
	})
	if err != nil {
		return MirrorMeasurement{}, fmt.Errorf("%s: %w", spec.name, err)
	}
	m.Requests = spec.prof.Stats()
	mm := MirrorMeasurement{Measurement: m, MBPerSec: float64(inputBytes) / 1e6 / m.Elapsed.Seconds()}
	if mm.TargetRecords, err = readTopic(ctx, r.tgt, target, func(*kgo.Record) error { return nil }); err != nil {
		return mm, fmt.Errorf("%s: reading the target back: %w", spec.name, err)
	}
	if mm.TargetRecords != int64(c.MirrorRecords) {
		return mm, fmt.Errorf("%s: the target topic %s holds %d records, the source %d", spec.name, target, mm.TargetRecords, c.MirrorRecords)
	}
	c.progressf("  %-36s %10s records/s %7.1f MB/s  (%d records in %s, %d transactions, %d aborted, first commit after %s)",
		spec.name, thousands(mm.RecordsPerSec), mm.MBPerSec, m.Records, round(m.Elapsed), m.Transactions, m.Aborted, round(m.FirstCommit))
	return mm, nil
}

// cleanup deletes a run's target topic, its offsets topic on the target
// and its group on the source.
func (r *mirrorRunner) cleanup(ctx context.Context, name, target string) {
	group := r.cfg.TopicPrefix + name
	r.tgt.cleanup(ctx, []string{target, group + "-mirror-offsets"})
	r.src.cleanup(ctx, nil, group)
}

// statsEvery is how often runMirrors samples the instances' Stats: the
// finish line (and the first commit) of a mirror run is seen up to this
// late.
var statsEvery = 2 * time.Millisecond // a var for TestMirrorLatencyCountsTheLastCommit

// runMirrors runs spec.instances mirror instances, named like the run,
// and adds the records their Stats count committed to fl. One failing
// stops all.
func (r *mirrorRunner) runMirrors(ctx context.Context, spec copySpec, fl *finishLine) (txnCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ms := make([]*mirror.Mirror, spec.instances)
	for i := range ms {
		m, err := r.newMirror(spec, strconv.Itoa(i+1))
		if err != nil {
			for _, m := range ms[:i] {
				m.Close()
			}
			return txnCounts{}, err
		}
		ms[i] = m
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ms))
	for _, m := range ms {
		wg.Go(func() {
			// An instance still starting when the run ends returns
			// the cancellation: that is a stop, not a failure.
			if err := m.Run(ctx); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
				errs <- err
				cancel()
			}
		})
	}
	seen, err := r.follow(ctx, spec, ms, fl)
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	// The instances have stopped: count what they committed since the
	// last sample. The latency run stops them as soon as its consumer
	// has read every record, often before the next sample.
	var counts txnCounts
	var copied int64
	for _, m := range ms {
		st := m.Stats()
		counts.committed += st.TxnsCommitted
		counts.aborted += st.TxnsAborted
		copied += st.RecordsCopied
	}
	if copied > seen {
		fl.add(copied - seen)
	}
	return counts, err
}

// follow samples the instances' Stats until ctx is done: committed records
// go to fl, and spec.ready is closed once they own every partition. It
// returns the records committed as last sampled.
func (r *mirrorRunner) follow(ctx context.Context, spec copySpec, ms []*mirror.Mirror, fl *finishLine) (int64, error) {
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	var seen int64
	for {
		var copied int64
		owned := 0
		for _, m := range ms {
			st := m.Stats()
			copied += st.RecordsCopied
			owned += len(st.Partitions)
		}
		if copied > seen {
			fl.add(copied - seen)
			seen = copied
		}
		if spec.ready != nil && owned == int(r.cfg.Partitions) {
			close(spec.ready)
			spec.ready = nil
		}
		select {
		case <-ctx.Done():
			return seen, nil
		case <-t.C:
		}
	}
}

// newMirror returns instance id of spec's mirror with `exactly mirror`'s
// defaults but for the transaction size and commit interval.
func (r *mirrorRunner) newMirror(spec copySpec, id string) (*mirror.Mirror, error) {
	opts := []mirror.Opt{
		mirror.SourceBrokers(r.src.brokers...),
		mirror.TargetBrokers(r.tgt.brokers...),
		mirror.Topics(spec.source),
		mirror.RenamePrefix(r.renamePrefix(spec.name)),
		mirror.InstanceID(id),
		mirror.MaxRecordsPerTxn(spec.txnSize),
		mirror.CommitInterval(spec.interval),
		mirror.TransactionTimeout(max(10*time.Second, 4*spec.interval)),
		mirror.WithLogger(r.cfg.logger().With("mirror", spec.name, "instance", id)),
		mirror.SourceOpts(r.src.opts...),
		mirror.TargetOpts(r.tgt.opts...),
	}
	if spec.prof != nil {
		opts = append(opts, mirror.SourceOpts(kgo.WithHooks(spec.prof)), mirror.TargetOpts(kgo.WithHooks(spec.prof)))
	}
	m, err := mirror.New(r.cfg.TopicPrefix+spec.name, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating mirror %s: %w", spec.name, err)
	}
	return m, nil
}

// medianMirror returns the measurement of median throughput, with every
// run's rate in Runs.
func medianMirror(ms []MirrorMeasurement) MirrorMeasurement {
	plain := make([]Measurement, len(ms))
	for i, m := range ms {
		plain[i] = m.Measurement
	}
	med := median(plain)
	for _, m := range ms {
		if m.Elapsed == med.Elapsed && m.Records == med.Records && m.RecordsPerSec == med.RecordsPerSec {
			m.Measurement = med
			return m
		}
	}
	return MirrorMeasurement{Measurement: med}
}

// describeTarget says where the target topics are, for the report.
func (mr *MirrorResults) describeTarget() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s; target %s", mr.Source, mr.Target)
	if mr.SameCluster {
		b.WriteString(" (no --target-brokers: source and target are ONE cluster, each run's target topic renamed)")
	}
	fmt.Fprintf(&b, "; target topics %s", mr.TargetTopics)
	return b.String()
}
