package state

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Iter iterates in key order over the committed data of one store
// partition, as of its creation (a Pebble iterator's point-in-time view).
//
//	it, err := db.NewIter("orders", 3)
//	if err != nil { ... }
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// Key and Value are copies owned by the Iter, valid until the next call to
// Next or Close. An Iter is not safe for concurrent use. If the DB closes
// first, Next returns false and Err returns ErrClosed.
type Iter struct {
	db        *DB
	store     string
	partition int32
	prefixLen int

	// pit is nil once closed, by Close or by DB.Close. It is written under
	// db.mu: for reading by Next and Close, for writing by DB.Close.
	pit *pebble.Iterator

	started, done, closed bool
	key, value            []byte
	err                   error
}

// NewIter returns an iterator over the committed data of store partition.
// The caller must Close it.
func (db *DB) NewIter(store string, partition int32) (*Iter, error) {
	if err := checkPartition("store", store, partition); err != nil {
		return nil, fmt.Errorf("creating iterator: %w", err)
	}
	if err := db.acquire(); err != nil {
		return nil, fmt.Errorf("creating iterator: %w", err)
	}
	defer db.mu.RUnlock()
	prefix := appendPartition(nil, tagData, store, partition)
	pit, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixSuccessor(prefix)})
	if err != nil {
		return nil, fmt.Errorf("creating iterator over %s/%d: %w", store, partition, err)
	}
	it := &Iter{db: db, store: store, partition: partition, prefixLen: len(prefix), pit: pit}
	db.iters.Lock()
	db.iters.open[it] = struct{}{}
	db.iters.Unlock()
	return it, nil
}

// Range calls fn, in key order, for every committed key of store
// partition in [lo, hi) (nil lo: from the first key, nil hi: to the last)
// until fn returns false. The key and value passed to fn are valid only
// during the call; fn may read the DB.
func (db *DB) Range(store string, partition int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := checkPartition("store", store, partition); err != nil {
		return fmt.Errorf("ranging over keys: %w", err)
	}
	if err := rangeKeys(db, db.pdb, store, partition, lo, hi, fn); err != nil {
		return fmt.Errorf("ranging over keys in %s/%d: %w", store, partition, err)
	}
	return nil
}

// Next moves to the next key and reports whether there is one.
func (it *Iter) Next() bool {
	if it.closed || it.done || it.err != nil {
		return false
	}
	if err := it.db.acquire(); err != nil {
		return it.stop(err)
	}
	defer it.db.mu.RUnlock()
	if it.pit == nil {
		return it.stop(ErrClosed)
	}
	var valid bool
	if it.started {
		valid = it.pit.Next()
	} else {
		valid, it.started = it.pit.First(), true
	}
	if !valid {
		return it.stop(it.pit.Error())
	}
	return it.load()
}

// load copies the current entry.
func (it *Iter) load() bool {
	v, err := it.pit.ValueAndErr()
	if err != nil {
		return it.stop(err)
	}
	it.key = append(it.key[:0], it.pit.Key()[it.prefixLen:]...)
	it.value = append(it.value[:0], v...)
	return true
}

// stop ends the iteration with err (nil at the end of the data).
func (it *Iter) stop(err error) bool {
	it.done = true
	it.key, it.value = it.key[:0], it.value[:0]
	if err != nil {
		it.err = fmt.Errorf("iterating %s/%d: %w", it.store, it.partition, err)
	}
	return false
}

// Key returns the current user key (without the store partition prefix).
func (it *Iter) Key() []byte { return it.key }

// Value returns the current value.
func (it *Iter) Value() []byte { return it.value }

// Err returns the error that ended the iteration, if any.
func (it *Iter) Err() error { return it.err }

// Close releases the iterator and returns Err, or Pebble's error on close.
// It is idempotent.
func (it *Iter) Close() error {
	if it.closed {
		return it.err
	}
	it.closed = true
	it.db.mu.RLock() // not acquire: closing after DB.Close is fine
	defer it.db.mu.RUnlock()
	if it.pit == nil {
		return it.err
	}
	err := it.pit.Close()
	it.pit = nil
	it.db.iters.Lock()
	delete(it.db.iters.open, it)
	it.db.iters.Unlock()
	if err != nil && it.err == nil {
		it.err = fmt.Errorf("closing iterator over %s/%d: %w", it.store, it.partition, err)
	}
	return it.err
}

// closeItersLocked closes the iterators left open; db.mu is held for
// writing, so no Iter method runs concurrently.
func (db *DB) closeItersLocked() error {
	db.iters.Lock()
	defer db.iters.Unlock()
	var err error
	for it := range db.iters.open {
		if cerr := it.pit.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing iterator left open: %w", cerr)
		}
		it.pit = nil
	}
	clear(db.iters.open)
	return err
}
