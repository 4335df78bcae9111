package dbsink

import (
	"slices"
	"sync/atomic"
)

type stats struct {
	records, batches, deadLettered, rollbacks atomic.Int64
}

// Stats is a snapshot of a sink's counters.
type Stats struct {
	RecordsApplied int64 // records applied by committed transactions (dead letters not counted)
	Batches        int64 // committed transactions
	DeadLettered   int64 // records committed to the dead-letter table
	Rollbacks      int64 // transactions rolled back (errors, lost partitions)
	Partitions     []PartitionStats
}

// PartitionStats is the progress of one owned partition.
type PartitionStats struct {
	Topic     string
	Partition int32
	// Epoch is the owner epoch this instance holds.
	Epoch int64
	// Position is the next offset to apply as committed in the database,
	// -1 when none is.
	Position int64
	// End is the last stable offset as last fetched, -1 unknown.
	End int64
	// Lag is End − Position (End when no position), -1 when End is
	// unknown. Transaction markers count: a partition written
	// transactionally shows a lag of 1 at rest.
	Lag int64
}

// Stats returns the sink's counters and the lag of every partition this
// instance owns, sorted by topic and partition.
func (s *Sink) Stats() Stats {
	out := Stats{
		RecordsApplied: s.stats.records.Load(),
		Batches:        s.stats.batches.Load(),
		DeadLettered:   s.stats.deadLettered.Load(),
		Rollbacks:      s.stats.rollbacks.Load(),
	}
	s.mu.Lock()
	for p, st := range s.mu.owned {
		ps := PartitionStats{Topic: p.topic, Partition: p.part, Epoch: st.epoch, Position: st.committed, End: st.end, Lag: -1}
		if st.end >= 0 {
			ps.Lag = st.end - max(st.committed, 0)
		}
		out.Partitions = append(out.Partitions, ps)
	}
	s.mu.Unlock()
	slices.SortFunc(out.Partitions, func(a, b PartitionStats) int {
		return compareTP(tp{a.Topic, a.Partition}, tp{b.Topic, b.Partition})
	})
	return out
}
