package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/processor"
)

// app is one run's order application: its group and topics.
type app struct {
	group  string
	topics orders.Topics
}

// newApp names a run's group and output topics; input is the topic read.
func newApp(group, input string) app {
	return app{group: group, topics: orders.Topics{Orders: input, Events: group + "-events", DLQ: group + "-dlq"}}
}

// outputs lists the topics the run creates.
func (a app) outputs() []string {
	return append([]string{a.topics.Events, a.topics.DLQ}, a.changelogs()...)
}

// changelogs lists the changelog topics of the order service's stores.
func (a app) changelogs() []string {
	var out []string
	for _, store := range orders.OrderStores() {
		out = append(out, processor.ChangelogTopic(a.group, store))
	}
	return out
}

// instanceSpec configures the processors of one run.
type instanceSpec struct {
	app      app
	dir      string // parent of the instances' state directories
	txnSize  int
	interval time.Duration
	hooks    processor.Hooks
	kgoOpts  []kgo.Opt // added to every client of every instance
}

// newProcessor returns instance i of spec.
func (r *runner) newProcessor(spec instanceSpec, id string) (*processor.Processor, error) {
	topo, err := orders.OrderTopologyFor(spec.app.topics)
	if err != nil {
		return nil, err
	}
	return processor.New(topo,
		processor.Brokers(r.cluster.brokers...),
		processor.Group(spec.app.group),
		processor.InstanceID(id),
		processor.StateDir(filepath.Join(spec.dir, id)),
		processor.MaxRecordsPerTxn(spec.txnSize),
		processor.Loops(cmp.Or(r.loops, r.cfg.Loops)),
		processor.CommitInterval(spec.interval),
		processor.TransactionTimeout(max(10*time.Second, 4*spec.interval)),
		processor.DeadLetterTopic(spec.app.topics.DLQ),
		processor.ReplicationFactor(r.cfg.Replication),
		processor.WithLogger(r.cfg.logger().With("instance", id)),
		processor.WithHooks(spec.hooks),
		processor.KgoOpts(r.cluster.opts...),
		processor.KgoOpts(spec.kgoOpts...),
	)
}

// runProcessors runs n instances of spec until ctx is cancelled or one
// fails (which stops the others), and sums their counters.
func (r *runner) runProcessors(ctx context.Context, spec instanceSpec, n int) (txnCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := make([]*processor.Processor, n)
	for i := range ps {
		p, err := r.newProcessor(spec, fmt.Sprintf("i%d", i+1))
		if err != nil {
			return txnCounts{}, err
		}
		ps[i] = p
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			if errs[i] = p.Run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var c txnCounts
	for _, p := range ps {
		s := p.Stats()
		c.committed += s.Committed
		c.aborted += s.Aborted
	}
	return c, errors.Join(errs...)
}

// pipeline measures the exactly-once order pipeline with instances
// processors over the input.
func (r *runner) pipeline(ctx context.Context, name string, txnSize int, interval time.Duration, instances int) (Measurement, error) {
	a := newApp(r.cfg.TopicPrefix+name, r.input)
	defer r.cluster.cleanup(ctx, a.outputs(), a.group)
	m, err := r.measurePipeline(ctx, a, r.inputCount, txnSize, interval, instances)
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	r.progress(name, "transaction", "transactions", m)
	return m, nil
}

// progress reports a finished throughput run; unit and units name its
// transactions (batches at least once).
func (r *runner) progress(name, unit, units string, m Measurement) {
	r.cfg.progressf("  %-32s %10s records/s  (%d records in %s, first commit after %s, %d %s, %d aborted)",
		name, thousands(m.RecordsPerSec), m.Records, round(m.Elapsed), round(m.FirstCommit), m.Transactions, units, m.Aborted)
	if s := requestSummary(&m); s != "" {
		r.cfg.progressf("  %-32s per %s: %s", "", unit, s)
	}
	if sh := m.EndingShare(); sh > 0 && m.Transactions > 0 {
		r.cfg.progressf("  %-32s per %s: %s, of which ending (flush, offset commit, EndTxn) %s: %.0f%%", "", unit,
			round(m.TxnTime/time.Duration(m.Transactions)), round(m.Ending/time.Duration(m.Transactions)), 100*sh)
	}
}

// measurePipeline runs instances processors of a, each on a fresh state
// directory removed afterwards, until they committed target records.
func (r *runner) measurePipeline(ctx context.Context, a app, target int64, txnSize int, interval time.Duration, instances int) (Measurement, error) {
	dir, err := os.MkdirTemp(r.cfg.Dir, "exactly-bench-")
	if err != nil {
		return Measurement{}, err
	}
	defer os.RemoveAll(dir)
	prof := NewRequestProfile()
	var txnTime, ending atomic.Int64
	m, err := measure(ctx, r.cfg.RunTimeout, target, func(ctx context.Context, fl *finishLine) (txnCounts, error) {
		spec := instanceSpec{app: a, dir: dir, txnSize: txnSize, interval: interval, hooks: processor.Hooks{
			OnCommit: func(ti processor.TxnInfo) {
				txnTime.Add(int64(ti.Duration))
				ending.Add(int64(ti.Ending))
				fl.add(int64(ti.Records))
			},
		}, kgoOpts: []kgo.Opt{kgo.WithHooks(prof)}}
		return r.runProcessors(ctx, spec, instances)
	})
	if err == nil {
		m.Requests = prof.Stats()
		m.TxnTime, m.Ending = time.Duration(txnTime.Load()), time.Duration(ending.Load())
	}
	return m, err
}
