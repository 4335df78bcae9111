// Package mirrorprom exports a mirror's Stats as Prometheus metrics, read
// at scrape time. It is its own package so that package mirror does not
// import Prometheus.
package mirrorprom

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exactly-stream/exactly/mirror"
)

// Collector collects a mirror's metrics, labelled with its name.
type Collector struct {
	stats                                        func() mirror.Stats
	records, bytes, committed, aborted, dataLoss *prometheus.Desc
	position, end, lag                           *prometheus.Desc
}

// NewCollector returns a collector of stats (usually Mirror.Stats), every
// metric labelled mirror=name.
func NewCollector(name string, stats func() mirror.Stats) *Collector {
	l := prometheus.Labels{"mirror": name}
	d := func(n, help string, vars ...string) *prometheus.Desc { return prometheus.NewDesc(n, help, vars, l) }
	return &Collector{
		stats:     stats,
		records:   d("exactly_mirror_records_copied_total", "Records committed to the target."),
		bytes:     d("exactly_mirror_bytes_copied_total", "Bytes of keys, values and headers committed to the target."),
		committed: d("exactly_mirror_transactions_committed_total", "Target transactions committed."),
		aborted:   d("exactly_mirror_transactions_aborted_total", "Target transactions aborted (revokes, refused records)."),
		dataLoss:  d("exactly_mirror_source_data_loss_total", "Source fetches that found their offset deleted before it was copied."),
		position:  d("exactly_mirror_position", "Next source offset to copy, as committed on the target (-1: none).", "topic", "partition"),
		end:       d("exactly_mirror_source_end_offset", "Source last stable offset as last fetched (-1: unknown).", "topic", "partition"),
		lag:       d("exactly_mirror_lag", "Source last stable offset minus the mirrored position (-1: unknown).", "topic", "partition"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.bytes, c.committed, c.aborted, c.dataLoss, c.position, c.end, c.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.records, s.RecordsCopied)
	counter(c.bytes, s.BytesCopied)
	counter(c.committed, s.TxnsCommitted)
	counter(c.aborted, s.TxnsAborted)
	counter(c.dataLoss, s.SourceDataLoss)
	for _, p := range s.Partitions {
		part := strconv.Itoa(int(p.Partition))
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(p.Position), p.Topic, part)
		ch <- prometheus.MustNewConstMetric(c.end, prometheus.GaugeValue, float64(p.End), p.Topic, part)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(p.Lag), p.Topic, part)
	}
}
