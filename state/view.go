package state

import (
	"fmt"
	"iter"

	"github.com/exactly-stream/exactly/topology"
)

// View is a typed, read-only view of the committed data of one store
// partition, for state queries and tests. It is a small value; copy it
// freely.
type View[K, V any] struct {
	db        *DB
	store     string
	partition int32
	keys      topology.Serde[K]
	values    topology.Serde[V]
}

// NewView returns a View of store partition that encodes keys with ks and
// decodes values with vs.
func NewView[K, V any](db *DB, store string, partition int32, ks topology.Serde[K], vs topology.Serde[V]) View[K, V] {
	return View[K, V]{db: db, store: store, partition: partition, keys: ks, values: vs}
}

// Get returns the committed value of key.
func (v View[K, V]) Get(key K) (V, bool, error) {
	var zero V
	kb, err := v.keys.Encode(key)
	if err != nil {
		return zero, false, fmt.Errorf("encoding key for %s/%d: %w", v.store, v.partition, err)
	}
	vb, ok, err := v.db.Get(v.store, v.partition, kb)
	if err != nil || !ok {
		return zero, false, err
	}
	val, err := v.values.Decode(vb)
	if err != nil {
		return zero, false, fmt.Errorf("decoding value of key %x in %s/%d: %w", kb, v.store, v.partition, err)
	}
	return val, true, nil
}

// All returns an iterator over the committed entries in key order, and a
// function returning the error that ended the last iteration (creating
// the iterator, decoding a key or value, or reading). Call it after the
// loop:
//
//	all, errf := view.All()
//	for k, v := range all { ... }
//	if err := errf(); err != nil { ... }
//
// Each range over the sequence starts a fresh iteration and resets the
// error. Breaking out of the loop early is not an error.
func (v View[K, V]) All() (iter.Seq2[K, V], func() error) {
	var err error
	seq := func(yield func(K, V) bool) {
		err = v.each(yield)
	}
	return seq, func() error { return err }
}

func (v View[K, V]) each(yield func(K, V) bool) (err error) {
	it, err := v.db.NewIter(v.store, v.partition)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for it.Next() {
		k, val, err := v.decode(it.Key(), it.Value())
		if err != nil {
			return err
		}
		if !yield(k, val) {
			return nil
		}
	}
	return it.Err()
}

func (v View[K, V]) decode(kb, vb []byte) (K, V, error) {
	var (
		zk K
		zv V
	)
	k, err := v.keys.Decode(kb)
	if err != nil {
		return zk, zv, fmt.Errorf("decoding key %x in %s/%d: %w", kb, v.store, v.partition, err)
	}
	val, err := v.values.Decode(vb)
	if err != nil {
		return zk, zv, fmt.Errorf("decoding value of key %x in %s/%d: %w", kb, v.store, v.partition, err)
	}
	return k, val, nil
}
