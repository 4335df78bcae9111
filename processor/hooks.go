package processor

import "time"

// Hooks observe the processor. Every field is optional. Hooks run on the
// processor's goroutines and must not block.
type Hooks struct {
	// OnCommit runs after a transaction committed and its state was
	// applied to the local store.
	OnCommit func(TxnInfo)
	// OnAbort runs after a transaction was aborted; err says why (nil for a
	// clean abort after a rebalance).
	OnAbort func(err error)
	// OnRestore runs after one store partition was restored.
	OnRestore func(RestoreInfo)
	// OnRestoreProgress runs during a restore, after each batch of
	// changelog records applied.
	OnRestoreProgress func(RestoreProgress)
	// OnRebalance runs when partitions are assigned (before their restore)
	// or revoked, including a revoke whose callback kgo dropped, reported
	// once the processor finds the client no longer holds the partition.
	OnRebalance func(assigned, revoked []int32)
}

// RestoreProgress describes a restore under way.
type RestoreProgress struct {
	Store     string
	Partition int32
	Applied   int64 // changelog records applied so far
	Offset    int64 // next changelog offset to read
	Target    int64 // last stable offset being read up to
}

// TxnInfo describes a committed transaction.
type TxnInfo struct {
	Records    int // input records consumed
	DeadLetter int // of which went to the dead-letter topic
	Skipped    int // of which were skipped (error policy skip)
	Outputs    int // records produced to sinks
	// Duration runs from Begin to the local state applied.
	Duration time.Duration
	// Ending is the part of Duration the transaction spent ending: the
	// flush of its outputs, the offset commit and EndTxn, until the
	// broker confirmed the commit. Its loop processes nothing meanwhile;
	// other loops (Loops) do.
	Ending time.Duration
}

// RestoreInfo describes the restore of one store partition.
type RestoreInfo struct {
	Store     string
	Partition int32
	From      int64 // first changelog offset read
	Records   int64 // changelog data records applied
	Wiped     bool  // local state was discarded first
	Duration  time.Duration
}

// Stats are cumulative counters of a Processor.
type Stats struct {
	Committed      int64 // transactions committed
	Aborted        int64 // transactions aborted
	Records        int64 // input records committed
	DeadLettered   int64 // input records sent to the dead-letter topic (committed)
	Skipped        int64 // bad input records skipped under error policy skip (committed)
	Restored       int64 // changelog records applied by restores
	Restores       int64 // store partitions restored
	SessionRestart int64 // sessions recreated after an End error
	// Events counts what the topology's nodes counted with
	// topology.Call.Count (a windowed aggregation's late records dropped),
	// in committed transactions.
	Events map[Event]int64
}

// Event is what a node of the topology counts (topology.Call.Count).
type Event struct {
	Node, Name string
}

// hookList runs every Hooks given with WithHooks, in order.
type hookList []Hooks

func (l hookList) commit(i TxnInfo) {
	for _, h := range l {
		if h.OnCommit != nil {
			h.OnCommit(i)
		}
	}
}

func (l hookList) abort(err error) {
	for _, h := range l {
		if h.OnAbort != nil {
			h.OnAbort(err)
		}
	}
}

func (l hookList) restore(i RestoreInfo) {
	for _, h := range l {
		if h.OnRestore != nil {
			h.OnRestore(i)
		}
	}
}

func (l hookList) restoreProgress(r RestoreProgress) {
	for _, h := range l {
		if h.OnRestoreProgress != nil {
			h.OnRestoreProgress(r)
		}
	}
}

func (l hookList) rebalance(assigned, revoked []int32) {
	for _, h := range l {
		if h.OnRebalance != nil {
			h.OnRebalance(assigned, revoked)
		}
	}
}
