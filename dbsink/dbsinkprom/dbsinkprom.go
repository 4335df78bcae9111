// Package dbsinkprom exports a database sink's Stats as Prometheus
// metrics, read at scrape time. It is its own package so that package
// dbsink does not import Prometheus.
package dbsinkprom

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exactly-stream/exactly/dbsink"
)

// Collector collects a sink's metrics, labelled with its name.
type Collector struct {
	stats                                  func() dbsink.Stats
	applied, batches, deadLetter, rollback *prometheus.Desc
	epoch, position, lag                   *prometheus.Desc
}

// NewCollector returns a collector of stats (usually Sink.Stats), every
// metric labelled sink=name.
func NewCollector(name string, stats func() dbsink.Stats) *Collector {
	l := prometheus.Labels{"sink": name}
	d := func(n, help string, vars ...string) *prometheus.Desc { return prometheus.NewDesc(n, help, vars, l) }
	return &Collector{
		stats:      stats,
		applied:    d("exactly_sink_records_applied_total", "Records applied by committed database transactions."),
		batches:    d("exactly_sink_batches_total", "Database transactions committed."),
		deadLetter: d("exactly_sink_dead_lettered_total", "Malformed records committed to the dead-letter table."),
		rollback:   d("exactly_sink_rollbacks_total", "Database transactions rolled back (errors, partitions lost)."),
		epoch:      d("exactly_sink_owner_epoch", "Owner epoch this instance holds.", "topic", "partition"),
		position:   d("exactly_sink_position", "Next offset to apply, as committed in the database (-1: none).", "topic", "partition"),
		lag:        d("exactly_sink_lag", "Last stable offset minus the committed position (-1: unknown).", "topic", "partition"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.applied, c.batches, c.deadLetter, c.rollback, c.epoch, c.position, c.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for d, v := range map[*prometheus.Desc]int64{c.applied: s.RecordsApplied, c.batches: s.Batches, c.deadLetter: s.DeadLettered, c.rollback: s.Rollbacks} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	for _, p := range s.Partitions {
		part := strconv.Itoa(int(p.Partition))
		for d, v := range map[*prometheus.Desc]int64{c.epoch: p.Epoch, c.position: p.Position, c.lag: p.Lag} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), p.Topic, part)
		}
	}
}
