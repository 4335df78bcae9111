package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/exactly-stream/exactly/examples/orders"
)

// runner holds one Run's cluster and input.
type runner struct {
	cfg        Config
	cluster    *cluster
	input      string      // the pre-produced orders topic
	inputCount int64       // its records
	sizes      outputSizes // the pipeline's output sizes per input record (ceiling)
	maxOutput  int         // the largest of them
	// loops, when set, overrides cfg.Loops for the runs under way (the
	// side-by-side runs with PeerLoops).
	loops int
}

// Run runs every part of cfg not skipped and returns the figures. Parts
// run one after another; cfg.Progress shows each measurement as it ends.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	begin := time.Now()
	res := &Results{Machine: machineInfo()}
	if cfg.suite() == SuiteMirror {
		if err := runMirror(ctx, cfg, res); err != nil {
			return res, err
		}
		res.Machine.LoadAfter = loadAverage()
		res.Elapsed = time.Since(begin)
		return res, nil
	}
	cc, err := openCluster(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer cc.close()
	r := &runner{cfg: cfg, cluster: cc, input: cfg.TopicPrefix + "orders"}
	res.Setup = Setup{
		Cluster: cc.describe(cfg.KfakeBrokers), Partitions: cfg.Partitions, Loops: cfg.Loops,
		Customers: cfg.Customers, Seed: cfg.Seed, Repeat: cfg.repeat(),
	}
	if err := r.runParts(ctx, res); err != nil {
		return res, err
	}
	res.Targets = res.evaluate()
	res.Machine.LoadAfter = loadAverage()
	res.Elapsed = time.Since(begin)
	return res, nil
}

func (r *runner) runParts(ctx context.Context, res *Results) error {
	c := &r.cfg
	needInput := c.runs(PartPipeline) || c.runs(PartCeiling) || c.runs(PartALO) || c.runs(PartScaling) ||
		c.runs(PartLatency) && c.LatencyRate == 0 || c.Peer != ""
	if c.Peer != "" {
		if err := c.checkPeer(); err != nil {
			return err
		}
	}
	if needInput {
		if err := r.prepareInput(ctx, &res.Setup); err != nil {
			return err
		}
	}
	if err := r.grid(ctx, res); err != nil {
		return err
	}
	if c.runs(PartLatency) {
		l, err := r.latency(ctx, res.Throughput)
		if err != nil {
			return err
		}
		res.Latency = l
	}
	if c.runs(PartRestore) || c.runs(PartRSS) {
		if err := r.restore(ctx, res); err != nil {
			return err
		}
	}
	if c.runs(PartScaling) {
		c.progressf("scaling (txn %d, commit %s)", c.ScaleTxnSize, c.ScaleCommitInterval)
		all := make([][]Measurement, len(c.Instances))
		for round := range c.repeat() {
			for i, n := range c.Instances {
				m, err := r.pipeline(ctx, runName(fmt.Sprintf("scale-%d-instances", n), round, c.repeat()), c.ScaleTxnSize, c.ScaleCommitInterval, n)
				if err != nil {
					return err
				}
				all[i] = append(all[i], m)
			}
		}
		for i, n := range c.Instances {
			res.Scaling = append(res.Scaling, Scale{Instances: n, TxnSize: c.ScaleTxnSize, CommitInterval: c.ScaleCommitInterval, Measurement: median(all[i])})
		}
	}
	if c.Peer != "" {
		return r.peers(ctx, res)
	}
	return nil
}

// prepareInput creates and fills the input topic and, for the ceiling,
// computes the pipeline's output sizes per input record.
func (r *runner) prepareInput(ctx context.Context, setup *Setup) error {
	c := &r.cfg
	if err := r.cluster.createTopic(ctx, r.input, c.Partitions, false); err != nil {
		return err
	}
	cl, err := r.cluster.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	begin := time.Now()
	st, err := orders.Produce(ctx, cl, orders.ProduceConfig{Count: c.Orders, Customers: c.Customers, Seed: c.Seed, Topic: r.input})
	if err != nil {
		return fmt.Errorf("producing the input: %w", err)
	}
	r.inputCount, setup.Orders = int64(st.Produced), int64(st.Produced)
	c.progressf("input: %d orders over %d customers in %s", st.Produced, c.Customers, round(time.Since(begin)))
	if !c.runs(PartCeiling) {
		return nil
	}
	fold := newSizeFold()
	if _, err := readTopic(ctx, r.cluster, r.input, fold.add); err != nil {
		return err
	}
	r.sizes, r.maxOutput = fold.sizes, fold.sizes.largest()
	setup.EventBytes, setup.ChangelogBytes = r.sizes.bytes()
	return nil
}

// grid measures the pipeline, the ceiling and at-least-once at every
// transaction size and commit interval, interleaved (and, with Repeat,
// repeated in rounds) so that a drift in the machine's load touches all
// three alike.
func (r *runner) grid(ctx context.Context, res *Results) error {
	c := &r.cfg
	if !c.runs(PartPipeline) && !c.runs(PartCeiling) && !c.runs(PartALO) {
		return nil
	}
	c.progressf("throughput over %d records", r.inputCount)
	for _, interval := range c.CommitIntervals {
		for _, size := range c.TxnSizes {
			cell := Cell{TxnSize: size, CommitInterval: interval}
			suffix := fmt.Sprintf("txn%d-%s", size, interval)
			variants := []struct {
				part string
				dst  **Measurement
				run  func(context.Context, string, int, time.Duration) (Measurement, error)
				all  []Measurement
			}{
				{part: PartPipeline, dst: &cell.Pipeline, run: func(ctx context.Context, name string, size int, iv time.Duration) (Measurement, error) {
					return r.pipeline(ctx, name, size, iv, 1)
				}},
				{part: PartCeiling, dst: &cell.Ceiling, run: r.ceiling},
				{part: PartALO, dst: &cell.AtLeastOnce, run: r.atLeastOnce},
			}
			for round := range c.repeat() {
				for i := range variants {
					v := &variants[i]
					if !c.runs(v.part) {
						continue
					}
					m, err := v.run(ctx, runName(v.part+"-"+suffix, round, c.repeat()), size, interval)
					if err != nil {
						return err
					}
					v.all = append(v.all, m)
				}
			}
			for _, v := range variants {
				if len(v.all) > 0 {
					m := median(v.all)
					*v.dst = &m
				}
			}
			res.Throughput = append(res.Throughput, cell)
		}
	}
	return nil
}

// runName names round (from 0) of a run repeated n times.
func runName(name string, round, n int) string {
	if n <= 1 {
		return name
	}
	return fmt.Sprintf("%s-r%d", name, round+1)
}

// median returns the measurement of median throughput (the lower of the
// two middle ones for an even count), with every run's rate in Runs.
func median(ms []Measurement) Measurement {
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b Measurement) int { return cmp.Compare(a.RecordsPerSec, b.RecordsPerSec) })
	m := sorted[(len(sorted)-1)/2]
	if len(ms) > 1 {
		m.Runs = make([]float64, len(ms))
		for i, x := range ms {
			m.Runs[i] = x.RecordsPerSec
		}
	}
	return m
}
