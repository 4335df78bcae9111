package dbsinkprom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dbsink"
)

// TestCollector: every counter and per-partition gauge is exported with
// its labels and value.
func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector("pay", func() dbsink.Stats {
		return dbsink.Stats{RecordsApplied: 7, Batches: 2, DeadLettered: 1, Rollbacks: 3,
			Partitions: []dbsink.PartitionStats{{Topic: "ev", Partition: 1, Epoch: 4, Position: 10, End: 12, Lag: 2}}}
	}))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, "pay", labels["sink"], mf.GetName())
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if labels["topic"] != "" {
				require.Equal(t, "ev", labels["topic"])
				require.Equal(t, "1", labels["partition"])
			}
			got[mf.GetName()] = v
		}
	}
	require.Equal(t, map[string]float64{
		"exactly_sink_records_applied_total": 7, "exactly_sink_batches_total": 2,
		"exactly_sink_dead_lettered_total": 1, "exactly_sink_rollbacks_total": 3,
		"exactly_sink_owner_epoch": 4, "exactly_sink_position": 10, "exactly_sink_lag": 2,
	}, got)
}
