package dsl_test

import (
	"context"
	"encoding/binary"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/dsl"
	"github.com/exactly-stream/exactly/topology"
)

// out is one produced record, key and value as strings (a nil value, a
// tombstone, is "<nil>").
type out struct{ Topic, Key, Value string }

// driver runs a built topology on an in-memory Runtime: stores are maps,
// emitted records are kept in order. It is the smallest thing that runs
// Dispatch; the topologytest driver will replace it.
type driver struct {
	t      testing.TB
	top    *topology.Topology
	stores map[string]map[string][]byte
	out    []out
	offset int64
}

func newDriver(t testing.TB, d *dsl.Builder) *driver {
	t.Helper()
	top, err := d.Build()
	require.NoError(t, err)
	return &driver{t: t, top: top, stores: make(map[string]map[string][]byte)}
}

func (dr *driver) Get(store string, key []byte) ([]byte, bool, error) {
	v, ok := dr.stores[store][string(key)]
	return v, ok, nil
}

func (dr *driver) Put(store string, key, value []byte) error {
	if dr.stores[store] == nil {
		dr.stores[store] = make(map[string][]byte)
	}
	dr.stores[store][string(key)] = value
	return nil
}

func (dr *driver) Delete(store string, key []byte) error {
	delete(dr.stores[store], string(key))
	return nil
}

// Range visits the keys of store in [lo, hi) in order.
func (dr *driver) Range(store string, lo, hi []byte, fn func(k, v []byte) bool) error {
	for _, k := range slices.Sorted(maps.Keys(dr.stores[store])) {
		if k >= string(lo) && (hi == nil || k < string(hi)) && !fn([]byte(k), dr.stores[store][k]) {
			break
		}
	}
	return nil
}

func (dr *driver) Emit(topic string, key, value []byte, _ time.Time, _ []topology.Header) error {
	v := string(value)
	if value == nil {
		v = "<nil>"
	}
	dr.out = append(dr.out, out{topic, string(key), v})
	return nil
}

// pipe dispatches one record; value nil is a tombstone.
func (dr *driver) pipe(topic, key string, value []byte) {
	dr.t.Helper()
	dr.offset++
	in := &topology.Input{Topic: topic, Offset: dr.offset, Key: []byte(key), Value: value, Timestamp: time.Unix(dr.offset, 0)}
	require.NoError(dr.t, dr.top.Dispatch(context.Background(), dr, in))
}

// pipeAll dispatches string values.
func (dr *driver) pipeAll(topic string, kvs ...string) {
	dr.t.Helper()
	for i := 0; i+1 < len(kvs); i += 2 {
		dr.pipe(topic, kvs[i], []byte(kvs[i+1]))
	}
}

// take returns and forgets the records produced so far.
func (dr *driver) take() []out {
	o := dr.out
	dr.out = nil
	return o
}

// count reads an Int64 value of a store.
func (dr *driver) count(store, key string) (int64, bool) {
	v, ok := dr.stores[store][key]
	if !ok {
		return 0, false
	}
	require.Len(dr.t, v, 8)
	return int64(binary.BigEndian.Uint64(v)), true
}

func i64(n int64) string { return string(binary.BigEndian.AppendUint64(nil, uint64(n))) }
