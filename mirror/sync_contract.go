package mirror

// TEMPORARY: the lead's contract for positions.go (sync points in the
// offsets topic), until "mirror: a transactional ID per source partition"
// lands in main. Delete this file at that merge.

// Sync is a sync point: the copies of the committed source records at
// offsets >= Source are exactly the committed data records of the target
// partition at offsets >= Target, in the same order.
type Sync struct{ Source, Target int64 }

// Position is a source partition's stored position.
type Position struct {
	Next    int64
	Sync    Sync
	HasSync bool
}
