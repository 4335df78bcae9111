package state

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// defaultBatchRecords is the Restorer flush interval when none is given.
const defaultBatchRecords = 10000

// Restorer replays one changelog partition into one store partition. Feed
// it the changelog records in offset order (read with read_committed):
// Put for a record with a value, Delete for a tombstone, Skip for an
// offset that carries no data (control records, reserved keys).
//
// Every batchRecords records, and on Flush, the Restorer writes the
// records fed since the last flush AND the checkpoint (the highest offset
// seen) in one Pebble batch without fsync, so a crash mid-restore leaves a
// consistent prefix: data and checkpoint agree, and the next restore
// resumes from checkpoint + 1.
//
// Offsets must increase strictly and exceed the checkpoint the store
// partition had when the Restorer saw its first record; anything else
// fails with ErrOffsetOrder, and the record is not taken. After a failed
// write or flush, every call returns that error.
//
// A Restorer is not safe for concurrent use, and the processor must not
// apply Staged writes to the same store partition while restoring it. It is
// the processor's: an application never restores a store itself.
type Restorer struct {
	db           *DB
	store        string
	partition    int32
	batchRecords int

	b       *pebble.Batch // nil when nothing is pending
	key     []byte        // scratch
	pending int           // records fed since the last flush
	applied int64         // Put and Delete calls accepted
	offset  int64         // highest offset seen; meaningful when seen
	seen    bool
	floor   int64 // checkpoint at start, or -1; meaningful when started
	started bool
	err     error // sticky
}

// NewRestorer returns a Restorer of store partition that flushes every
// batchRecords records (10000 when batchRecords <= 0). Invalid arguments
// are reported by the first call.
func (db *DB) NewRestorer(store string, partition int32, batchRecords int) *Restorer {
	if batchRecords <= 0 {
		batchRecords = defaultBatchRecords
	}
	return &Restorer{db: db, store: store, partition: partition, batchRecords: batchRecords}
}

// Put restores key = value at offset. An empty value is a value, not a
// tombstone.
func (r *Restorer) Put(offset int64, key, value []byte) error {
	return r.record(offset, func(b *pebble.Batch) error {
		r.key = appendDataKey(r.key[:0], r.store, r.partition, key)
		return b.Set(r.key, value, nil)
	})
}

// Delete restores the tombstone of key at offset.
func (r *Restorer) Delete(offset int64, key []byte) error {
	return r.record(offset, func(b *pebble.Batch) error {
		r.key = appendDataKey(r.key[:0], r.store, r.partition, key)
		return b.Delete(r.key, nil)
	})
}

// Skip advances the checkpoint to offset without restoring data.
func (r *Restorer) Skip(offset int64) error {
	return r.record(offset, nil)
}

// SetInputCheckpoint restores, at changelog offset, the input checkpoint
// name (an offset record of the changelog: the last input offset a
// committed transaction consumed), in the same batch as the data it
// follows. The data of the record is not a store write.
func (r *Restorer) SetInputCheckpoint(name string, value, offset int64) error {
	if err := checkPartition("topic", name, r.partition); err != nil {
		return fmt.Errorf("restoring input checkpoint: %w", err)
	}
	if err := checkOffset(value); err != nil {
		return fmt.Errorf("restoring input checkpoint %s: %w", name, err)
	}
	return r.record(offset, func(b *pebble.Batch) error {
		r.applied-- // not a data record; record counts it
		r.key = appendPartition(r.key[:0], tagInputCheckpoint, name, r.partition)
		return b.Set(r.key, encodeOffset(value), nil)
	})
}

// record applies one changelog record (write may be nil for Skip) and
// flushes when the batch is full.
func (r *Restorer) record(offset int64, write func(*pebble.Batch) error) error {
	if err := r.accept(offset); err != nil {
		return err
	}
	if write != nil {
		if r.b == nil {
			r.b = r.db.pdb.NewBatch()
		}
		if err := write(r.b); err != nil {
			return r.fail(fmt.Errorf("restoring offset %d: %w", offset, err))
		}
		r.applied++
	}
	r.offset, r.seen = offset, true
	r.pending++
	if r.pending >= r.batchRecords {
		return r.Flush()
	}
	return nil
}

// accept checks that offset may come next, loading the starting checkpoint
// on the first record.
func (r *Restorer) accept(offset int64) error {
	if r.err != nil {
		return r.err
	}
	if !r.started {
		if err := r.start(); err != nil {
			return r.fail(err)
		}
	}
	if err := checkOffset(offset); err != nil {
		return fmt.Errorf("restoring %s/%d: %w", r.store, r.partition, err)
	}
	last := r.floor
	if r.seen {
		last = r.offset
	}
	if offset <= last {
		return fmt.Errorf("restoring %s/%d: offset %d after %d: %w", r.store, r.partition, offset, last, ErrOffsetOrder)
	}
	return nil
}

func (r *Restorer) start() error {
	if err := checkPartition("store", r.store, r.partition); err != nil {
		return fmt.Errorf("starting restore: %w", err)
	}
	floor, ok, err := r.db.Checkpoint(r.store, r.partition)
	if err != nil {
		return fmt.Errorf("starting restore: %w", err)
	}
	if !ok {
		floor = -1
	}
	r.floor, r.started = floor, true
	return nil
}

// Flush writes the records fed since the last flush together with the
// checkpoint in one Pebble batch. It does nothing when nothing is pending.
func (r *Restorer) Flush() error {
	if r.err != nil {
		return r.err
	}
	if r.pending == 0 {
		return nil
	}
	if err := r.flush(); err != nil {
		return r.fail(fmt.Errorf("flushing restore of %s/%d at offset %d: %w", r.store, r.partition, r.offset, err))
	}
	return nil
}

func (r *Restorer) flush() error {
	if r.b == nil {
		r.b = r.db.pdb.NewBatch()
	}
	defer r.closeBatch()
	r.key = appendPartition(r.key[:0], tagCheckpoint, r.store, r.partition)
	if err := r.b.Set(r.key, encodeOffset(r.offset), nil); err != nil {
		return err
	}
	if err := r.db.acquire(); err != nil {
		return err
	}
	defer r.db.mu.RUnlock()
	if err := r.b.Commit(pebble.NoSync); err != nil {
		r.db.cache.dropAll()
		return err
	}
	r.db.cache.dropPartition(storePartition{r.store, r.partition})
	r.pending = 0
	return nil
}

// Discard drops the records fed since the last flush (they were never
// written, and the checkpoint does not cover them) and finishes the
// Restorer: later calls return ErrFinished.
func (r *Restorer) Discard() {
	r.closeBatch()
	r.pending = 0
	if r.err == nil {
		r.err = ErrFinished
	}
}

func (r *Restorer) closeBatch() {
	if r.b != nil {
		_ = r.b.Close() // only fails on a batch closed twice, which b = nil prevents
		r.b = nil
	}
}

func (r *Restorer) fail(err error) error {
	r.closeBatch()
	r.err = err
	return err
}

// Applied returns the number of Put and Delete calls accepted so far,
// including those not flushed yet.
func (r *Restorer) Applied() int64 { return r.applied }

// Offset returns the highest offset fed to this Restorer, if any.
func (r *Restorer) Offset() (int64, bool) { return r.offset, r.seen }
