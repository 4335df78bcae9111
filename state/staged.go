package state

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Staged holds the uncommitted state writes of one Kafka transaction, over
// every store and partition, in a Pebble indexed batch: reads see the
// staged writes first and fall through to the committed data. A Get looks
// in a map of the transaction's own writes, then in the DB's cache of
// committed values (Options.ValueCacheSize), and reads Pebble only when
// both miss; Range merges the indexed batch with the committed data.
//
// Nothing staged reaches the DB before Apply, which the processor calls
// only after the Kafka transaction committed (invariant S1). After Apply or
// Discard the Staged is finished and its methods return ErrFinished.
//
// A Staged is not safe for concurrent use. It is the processor's: an
// application writes state from a topology's processors instead.
type Staged struct {
	db  *DB
	b   *pebble.Batch // nil once finished
	key []byte        // scratch for encoding keys

	// writes holds the latest staged write of every key, by store
	// partition: what the batch holds, in a form a Get reads in a map
	// lookup instead of an iterator over the batch and the DB.
	writes map[storePartition]map[string]stagedValue
}

// stagedValue is a staged write: a value, or a deletion.
type stagedValue struct {
	value   []byte
	deleted bool
}

// NewStaged returns an empty Staged over db.
func (db *DB) NewStaged() *Staged {
	return &Staged{db: db, b: db.pdb.NewIndexedBatch()}
}

// Get returns a copy of the value of key in store partition, as staged or,
// if the Staged did not touch key, as committed.
func (s *Staged) Get(store string, partition int32, key []byte) ([]byte, bool, error) {
	v, ok, err := s.get(store, partition, key)
	if err != nil {
		return nil, false, fmt.Errorf("getting staged key in %s/%d: %w", store, partition, err)
	}
	return v, ok, nil
}

func (s *Staged) get(store string, partition int32, key []byte) ([]byte, bool, error) {
	if err := s.check("store", store, partition); err != nil {
		return nil, false, err
	}
	if err := s.db.acquire(); err != nil {
		return nil, false, err
	}
	defer s.db.mu.RUnlock()
	sp := storePartition{store, partition}
	if w, ok := s.writes[sp][string(key)]; ok {
		if w.deleted {
			return nil, false, nil
		}
		return slices.Clone(w.value), true, nil
	}
	v, ok, gen := s.db.cache.get(sp, key)
	if ok {
		return slices.Clone(v), true, nil
	}
	s.key = appendDataKey(s.key[:0], store, partition, key)
	// The key is not staged (writes holds every staged key), so the
	// committed DB answers.
	v, ok, err := getData(s.db.pdb, s.key)
	if err != nil || !ok {
		return nil, false, err
	}
	s.db.cache.fill(sp, key, v, gen)
	return slices.Clone(v), true, nil
}

// stage records a write in s.writes, owning a copy of value.
func (s *Staged) stage(store string, partition int32, key, value []byte, deleted bool) {
	sp := storePartition{store, partition}
	if s.writes == nil {
		s.writes = make(map[storePartition]map[string]stagedValue)
	}
	m := s.writes[sp]
	if m == nil {
		m = make(map[string]stagedValue)
		s.writes[sp] = m
	}
	w := stagedValue{deleted: deleted}
	if !deleted {
		w.value = append(make([]byte, 0, len(value)), value...)
	}
	m[string(key)] = w
}

// Put stages key = value in store partition. An empty value is a value, not
// a deletion. Put copies key and value.
func (s *Staged) Put(store string, partition int32, key, value []byte) error {
	if err := s.check("store", store, partition); err != nil {
		return fmt.Errorf("staging put: %w", err)
	}
	s.key = appendDataKey(s.key[:0], store, partition, key)
	if err := s.b.Set(s.key, value, nil); err != nil {
		return fmt.Errorf("staging put in %s/%d: %w", store, partition, err)
	}
	s.stage(store, partition, key, value, false)
	return nil
}

// Delete stages the deletion of key in store partition.
func (s *Staged) Delete(store string, partition int32, key []byte) error {
	if err := s.check("store", store, partition); err != nil {
		return fmt.Errorf("staging delete: %w", err)
	}
	s.key = appendDataKey(s.key[:0], store, partition, key)
	if err := s.b.Delete(s.key, nil); err != nil {
		return fmt.Errorf("staging delete in %s/%d: %w", store, partition, err)
	}
	s.stage(store, partition, key, nil, true)
	return nil
}

// SetCheckpoint stages the changelog checkpoint of store partition: the
// offset of the last changelog record the transaction produced for it.
func (s *Staged) SetCheckpoint(store string, partition int32, changelogOffset int64) error {
	if err := s.setOffset(tagCheckpoint, "store", store, partition, changelogOffset); err != nil {
		return fmt.Errorf("staging checkpoint: %w", err)
	}
	return nil
}

// SetInputCheckpoint stages the last consumed offset of input topic
// partition.
func (s *Staged) SetInputCheckpoint(topic string, partition int32, offset int64) error {
	if err := s.setOffset(tagInputCheckpoint, "topic", topic, partition, offset); err != nil {
		return fmt.Errorf("staging input checkpoint: %w", err)
	}
	return nil
}

func (s *Staged) setOffset(tag byte, kind, name string, partition int32, offset int64) error {
	if err := s.check(kind, name, partition); err != nil {
		return err
	}
	if err := checkOffset(offset); err != nil {
		return err
	}
	s.key = appendPartition(s.key[:0], tag, name, partition)
	return s.b.Set(s.key, encodeOffset(offset), nil)
}

// Empty reports whether nothing is staged. A finished Staged is empty.
func (s *Staged) Empty() bool {
	return s.b == nil || s.b.Empty()
}

// Count returns the number of staged operations (puts, deletes and
// checkpoints), 0 once finished.
func (s *Staged) Count() uint32 {
	if s.b == nil {
		return 0
	}
	return s.b.Count()
}

// Apply commits everything staged to the DB in one atomic Pebble batch,
// without fsync: after a crash the DB holds some prefix of the applied
// batches, never part of one. The Staged is finished afterwards, whether
// Apply succeeded or not.
func (s *Staged) Apply() error {
	if err := s.apply(); err != nil {
		return fmt.Errorf("applying staged batch: %w", err)
	}
	return nil
}

func (s *Staged) apply() error {
	if s.b == nil {
		return ErrFinished
	}
	defer s.Discard()
	if err := s.db.acquire(); err != nil {
		return err
	}
	defer s.db.mu.RUnlock()
	if s.b.Empty() {
		return nil
	}
	if err := s.b.Commit(pebble.NoSync); err != nil {
		// Whether any of it reached the DB is unknown: the cache forgets
		// everything rather than guess.
		s.db.cache.dropAll()
		return err
	}
	for sp, m := range s.writes {
		s.db.cache.written(sp, m)
	}
	return nil
}

// Discard drops everything staged, leaving the DB untouched. It is
// idempotent and may follow Apply.
func (s *Staged) Discard() {
	if s.b == nil {
		return
	}
	_ = s.b.Close() // only fails on a batch closed twice, which b == nil prevents
	s.b, s.writes = nil, nil
}

// check validates a write target and that s is not finished.
func (s *Staged) check(kind, name string, partition int32) error {
	if s.b == nil {
		return ErrFinished
	}
	return checkPartition(kind, name, partition)
}

// Range calls fn, in key order, for every key of store partition in
// [lo, hi) as staged or, where the Staged did not touch it, as committed.
// A nil lo starts at the first key, a nil hi runs to the last. fn returns
// false to stop. The key and value passed to fn are valid only during the
// call. Writes staged while Range runs (fn must not stage any) are not
// guaranteed to be seen.
func (s *Staged) Range(store string, partition int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := s.rangeKeys(store, partition, lo, hi, fn); err != nil {
		return fmt.Errorf("ranging over staged keys in %s/%d: %w", store, partition, err)
	}
	return nil
}

// rangeChunk is how many entries Range copies per hold of the DB: fn runs
// with the DB released, since it may read the DB again (a holder must not
// acquire twice).
const rangeChunk = 256

func (s *Staged) rangeKeys(store string, partition int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := s.check("store", store, partition); err != nil {
		return err
	}
	return rangeKeys(s.db, s.b, store, partition, lo, hi, fn)
}

// rangeKeys is Range over r (the DB or a batch of it).
func rangeKeys(db *DB, r pebble.Reader, store string, partition int32, lo, hi []byte, fn func(key, value []byte) bool) error {
	prefix := appendPartition(nil, tagData, store, partition)
	opts := pebble.IterOptions{LowerBound: append(slices.Clip(prefix), lo...), UpperBound: prefixSuccessor(prefix)}
	if hi != nil {
		opts.UpperBound = append(slices.Clip(prefix), hi...)
	}
	var buf []byte
	var ends []int // entry i: key buf[ends[2i-1]:ends[2i]] (from 0 for i = 0), value buf[ends[2i]:ends[2i+1]]
	for {
		buf, ends = buf[:0], ends[:0]
		more, err := copyChunk(db, r, &opts, &buf, &ends)
		if err != nil {
			return err
		}
		from := 0
		for i := 0; i+1 < len(ends); i += 2 {
			k, v := buf[from+len(prefix):ends[i]], buf[ends[i]:ends[i+1]]
			if !fn(k, v) {
				return nil
			}
			from = ends[i+1]
		}
		if !more {
			return nil
		}
		// Continue right after the last key: its immediate successor.
		lastKey := buf[entryStart(ends, len(ends)-2):ends[len(ends)-2]]
		opts.LowerBound = append(slices.Clone(lastKey), 0)
	}
}

// entryStart returns where the key of the entry whose key ends at ends[i]
// begins in the chunk buffer.
func entryStart(ends []int, i int) int {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}

// copyChunk copies up to rangeChunk entries from opts.LowerBound on into
// buf (key then value, ends recording where each ends) and reports whether
// there may be more.
func copyChunk(db *DB, r pebble.Reader, opts *pebble.IterOptions, buf *[]byte, ends *[]int) (more bool, err error) {
	if err := db.acquire(); err != nil {
		return false, err
	}
	defer db.mu.RUnlock()
	it, err := r.NewIter(opts)
	if err != nil {
		return false, err
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n == rangeChunk {
			more = true
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return false, err
		}
		*buf = append(*buf, it.Key()...)
		*ends = append(*ends, len(*buf))
		*buf = append(*buf, v...)
		*ends = append(*ends, len(*buf))
		n++
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return false, err
	}
	return more, it.Close()
}
