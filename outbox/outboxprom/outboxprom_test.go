package outboxprom

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/outbox"
)

func TestCollector(t *testing.T) {
	st := outbox.Stats{RowsRelayed: 7, BytesRelayed: 70, Batches: 2, TxnsAborted: 1, Lag: 1500 * time.Millisecond}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector("orders", func() outbox.Stats { return st }))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			require.Len(t, m.GetLabel(), 1)
			require.Equal(t, "relay", m.GetLabel()[0].GetName())
			require.Equal(t, "orders", m.GetLabel()[0].GetValue())
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	require.Equal(t, map[string]float64{
		"exactly_outbox_rows_relayed_total":         7,
		"exactly_outbox_bytes_relayed_total":        70,
		"exactly_outbox_batches_total":              2,
		"exactly_outbox_transactions_aborted_total": 1,
		"exactly_outbox_lag_seconds":                1.5,
	}, got)
}
