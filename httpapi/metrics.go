package httpapi

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/exactly-stream/exactly/processor"
)

// metrics are an instance's Prometheus metrics. The counters move in the
// processor's hooks; readiness, lag and the store's figures are read at
// scrape time.
type metrics struct {
	recordsIn, recordsOut, deadLettered, skipped prometheus.Counter
	committed                                    prometheus.Counter
	aborted                                      *prometheus.CounterVec
	txnSeconds, txnEnding, txnRecords            prometheus.Histogram
	rebalances                                   prometheus.Counter
	restored                                     *prometheus.CounterVec
	restoreRemaining                             *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry, group string, p func() *processor.Processor) *metrics {
	f := factory{reg: reg, labels: prometheus.Labels{"group": group}}
	m := &metrics{
		recordsIn:    f.counter("exactly_records_in_total", "Input records consumed by committed transactions."),
		recordsOut:   f.counter("exactly_records_out_total", "Records produced to sinks by committed transactions."),
		deadLettered: f.counter("exactly_records_dead_lettered_total", "Input records sent to the dead-letter topic by committed transactions."),
		skipped:      f.counter("exactly_records_skipped_total", "Bad input records skipped (error policy skip) by committed transactions."),
		committed:    f.counter("exactly_transactions_committed_total", "Transactions committed."),
		aborted: f.counterVec("exactly_transactions_aborted_total",
			"Transactions aborted, by cause: rebalance, cluster (aborted by the broker), a Kafka error code, timeout or error.", "cause"),
		txnSeconds: f.histogram("exactly_transaction_duration_seconds", "Duration of committed transactions, from Begin to the local apply.",
			prometheus.ExponentialBuckets(0.005, 2, 12)),
		txnEnding: f.histogram("exactly_transaction_ending_seconds", "Of a committed transaction's duration, the time spent ending it (flush, offset commit, EndTxn) until the broker confirmed the commit.",
			prometheus.ExponentialBuckets(0.005, 2, 12)),
		txnRecords: f.histogram("exactly_transaction_records", "Input records per committed transaction.",
			prometheus.ExponentialBuckets(1, 4, 9)),
		rebalances: f.counter("exactly_rebalances_total", "Assignments and revocations that changed this instance's partitions."),
		restored:   f.counterVec("exactly_restored_records_total", "Changelog records applied by restores.", "store"),
		restoreRemaining: f.gaugeVec("exactly_restore_remaining_offsets",
			"Changelog offsets a restore under way still has to read (0 when done).", "store", "partition"),
	}
	reg.MustRegister(newScrapeCollector(p, f.labels))
	return m
}

func (m *metrics) hooks() processor.Hooks {
	return processor.Hooks{
		OnCommit: func(i processor.TxnInfo) {
			m.committed.Inc()
			m.recordsIn.Add(float64(i.Records))
			m.recordsOut.Add(float64(i.Outputs))
			m.deadLettered.Add(float64(i.DeadLetter))
			m.skipped.Add(float64(i.Skipped))
			m.txnSeconds.Observe(i.Duration.Seconds())
			m.txnEnding.Observe(i.Ending.Seconds())
			m.txnRecords.Observe(float64(i.Records))
		},
		OnAbort: func(err error) { m.aborted.WithLabelValues(causeLabel(err)).Inc() },
		OnRestore: func(i processor.RestoreInfo) {
			m.restored.WithLabelValues(i.Store).Add(float64(i.Records))
			m.restoreRemaining.WithLabelValues(i.Store, strconv.Itoa(int(i.Partition))).Set(0)
		},
		OnRestoreProgress: func(rp processor.RestoreProgress) {
			m.restoreRemaining.WithLabelValues(rp.Store, strconv.Itoa(int(rp.Partition))).Set(float64(max(rp.Target-rp.Offset, 0)))
		},
		OnRebalance: func(assigned, revoked []int32) {
			if len(assigned)+len(revoked) > 0 {
				m.rebalances.Inc()
			}
		},
	}
}

// causeLabel names an abort cause with few distinct values.
func causeLabel(err error) string {
	var ke *kerr.Error
	switch {
	case err == nil:
		return "rebalance"
	case errors.Is(err, processor.ErrTxnAborted):
		return "cluster"
	case errors.As(err, &ke):
		return strings.ToLower(ke.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// scrapeCollector reads readiness, consumer lag and the store's figures at
// scrape time.
type scrapeCollector struct {
	p                                                          func() *processor.Processor
	ready, lag, disk, cacheHit, cacheMiss, cacheSize, memtable *prometheus.Desc
	events                                                     *prometheus.Desc
}

func newScrapeCollector(p func() *processor.Processor, labels prometheus.Labels) *scrapeCollector {
	d := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, vars, labels)
	}
	return &scrapeCollector{
		p:         p,
		ready:     d("exactly_ready", "1 when every assigned partition is restored and processing."),
		lag:       d("exactly_consumer_lag_offsets", "Offsets between the last commit and the last stable offset, per input partition.", "partition"),
		disk:      d("exactly_state_disk_bytes", "Bytes of the local state store on disk."),
		cacheHit:  d("exactly_state_block_cache_hits_total", "Block cache hits of the local state store."),
		cacheMiss: d("exactly_state_block_cache_misses_total", "Block cache misses of the local state store."),
		cacheSize: d("exactly_state_block_cache_bytes", "Bytes in the block cache of the local state store."),
		memtable:  d("exactly_state_memtable_bytes", "Bytes in the memtables of the local state store."),
		events:    d("exactly_topology_events_total", "Events the topology's nodes counted in committed transactions (e.g. late records dropped by a windowed aggregation).", "node", "event"),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.ready, c.lag, c.disk, c.cacheHit, c.cacheMiss, c.cacheSize, c.memtable, c.events} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.p()
	ready := 0.0
	if p != nil && p.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	if p == nil {
		return
	}
	for part, lag := range p.Lag() {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), strconv.Itoa(int(part)))
	}
	for e, n := range p.Stats().Events {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(n), e.Node, e.Name)
	}
	m := p.StateMetrics()
	if m == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.disk, prometheus.GaugeValue, float64(m.DiskSpaceUsage()))
	ch <- prometheus.MustNewConstMetric(c.cacheHit, prometheus.CounterValue, float64(m.BlockCache.Hits))
	ch <- prometheus.MustNewConstMetric(c.cacheMiss, prometheus.CounterValue, float64(m.BlockCache.Misses))
	ch <- prometheus.MustNewConstMetric(c.cacheSize, prometheus.GaugeValue, float64(m.BlockCache.Size))
	ch <- prometheus.MustNewConstMetric(c.memtable, prometheus.GaugeValue, float64(m.MemTable.Size))
}

// factory registers metrics with the constant labels.
type factory struct {
	reg    *prometheus.Registry
	labels prometheus.Labels
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, vars ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels}, vars)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, vars ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels}, vars)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}
