package mirrorprom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/mirror"
)

func TestCollector(t *testing.T) {
	st := mirror.Stats{RecordsCopied: 7, BytesCopied: 70, TxnsCommitted: 2, TxnsAborted: 1,
		Partitions: []mirror.PartitionStats{{Topic: "events", Partition: 3, Position: 10, End: 14, Lag: 4}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector("mm", func() mirror.Stats { return st }))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, "mm", labels["mirror"], mf.GetName())
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if labels["topic"] != "" {
				require.Equal(t, "events", labels["topic"])
				require.Equal(t, "3", labels["partition"])
			}
			got[mf.GetName()] = v
		}
	}
	require.Equal(t, map[string]float64{
		"exactly_mirror_records_copied_total":         7,
		"exactly_mirror_bytes_copied_total":           70,
		"exactly_mirror_transactions_committed_total": 2,
		"exactly_mirror_transactions_aborted_total":   1,
		"exactly_mirror_source_data_loss_total":       0,
		"exactly_mirror_position":                     10,
		"exactly_mirror_source_end_offset":            14,
		"exactly_mirror_lag":                          4,
	}, got)
}
