// Package outboxprom exports an outbox relay's Stats as Prometheus
// metrics, read at scrape time. It is its own package so that package
// outbox does not import Prometheus.
package outboxprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/exactly-stream/exactly/outbox"
)

// Collector collects a relay's metrics, labelled with its name.
type Collector struct {
	stats                                 func() outbox.Stats
	rows, bytes, batches, aborted, lagSec *prometheus.Desc
}

// NewCollector returns a collector of stats (usually Relay.Stats), every
// metric labelled relay=name.
func NewCollector(name string, stats func() outbox.Stats) *Collector {
	l := prometheus.Labels{"relay": name}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, l) }
	return &Collector{
		stats:   stats,
		rows:    d("exactly_outbox_rows_relayed_total", "Outbox rows published in committed Kafka transactions."),
		bytes:   d("exactly_outbox_bytes_relayed_total", "Bytes of keys, values and headers of the rows relayed."),
		batches: d("exactly_outbox_batches_total", "Batches relayed: Kafka transactions committed."),
		aborted: d("exactly_outbox_transactions_aborted_total", "Kafka transactions aborted or failed to commit."),
		lagSec:  d("exactly_outbox_lag_seconds", "Age of the oldest outbox row waiting, as of the last read (0: the table was empty)."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rows, c.bytes, c.batches, c.aborted, c.lagSec} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(c.rows, s.RowsRelayed)
	counter(c.bytes, s.BytesRelayed)
	counter(c.batches, s.Batches)
	counter(c.aborted, s.TxnsAborted)
	ch <- prometheus.MustNewConstMetric(c.lagSec, prometheus.GaugeValue, s.Lag.Seconds())
}
