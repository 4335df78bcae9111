package mirror

import (
	"slices"
	"strings"
	"sync/atomic"
)

type stats struct {
	records, bytes, committed, aborted, dataLoss atomic.Int64
}

// Stats is a snapshot of a mirror's counters.
type Stats struct {
	RecordsCopied  int64 // records committed to the target
	BytesCopied    int64 // their keys, values and headers, in bytes
	TxnsCommitted  int64 // target transactions committed: one per source partition per round
	TxnsAborted    int64 // target transactions aborted
	SourceDataLoss int64 // source fetches that found their offset deleted (kgo's ErrDataLoss)
	Partitions     []PartitionStats
}

// PartitionStats is the progress of one owned source partition.
type PartitionStats struct {
	Topic     string
	Partition int32
	// Position is the next source offset to copy as committed in the
	// offsets topic, -1 when none is.
	Position int64
	// End is the source's last stable offset as last fetched, -1 unknown.
	End int64
	// Lag is End − Position (End when no position), -1 when End is unknown.
	Lag int64
}

// Stats returns the mirror's counters and the lag of every source partition
// this instance owns, sorted by topic and partition.
func (m *Mirror) Stats() Stats {
	s := Stats{
		RecordsCopied:  m.stats.records.Load(),
		BytesCopied:    m.stats.bytes.Load(),
		TxnsCommitted:  m.stats.committed.Load(),
		TxnsAborted:    m.stats.aborted.Load(),
		SourceDataLoss: m.stats.dataLoss.Load(),
	}
	m.mu.Lock()
	for p, st := range m.mu.owned {
		ps := PartitionStats{Topic: p.topic, Partition: p.part, Position: st.committed, End: st.end, Lag: -1}
		if st.end >= 0 {
			ps.Lag = st.end - max(st.committed, 0)
		}
		s.Partitions = append(s.Partitions, ps)
	}
	m.mu.Unlock()
	slices.SortFunc(s.Partitions, func(a, b PartitionStats) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return s
}
