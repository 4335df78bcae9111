package topology_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// emitted is one record a fakeRuntime received through Emit.
type emitted struct {
	Topic     string
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []topology.Header
}

// fakeRuntime is an in-memory topology.Runtime: stores are plain maps
// written directly (no staging), emitted records are appended to a slice.
// The *Err fields, when set, are returned by the matching method instead of
// doing anything.
type fakeRuntime struct {
	stores  map[string]map[string][]byte
	emitted []emitted

	getErr, putErr, deleteErr, emitErr error
}

var _ topology.Runtime = (*fakeRuntime)(nil)

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{stores: make(map[string]map[string][]byte)}
}

func (f *fakeRuntime) Get(store string, key []byte) ([]byte, bool, error) {
	if f.getErr != nil {
		return nil, false, f.getErr
	}
	v, ok := f.stores[store][string(key)]
	return v, ok, nil
}

func (f *fakeRuntime) Put(store string, key, value []byte) error {
	if f.putErr != nil {
		return f.putErr
	}
	if f.stores[store] == nil {
		f.stores[store] = make(map[string][]byte)
	}
	f.stores[store][string(key)] = value
	return nil
}

func (f *fakeRuntime) Delete(store string, key []byte) error {
	if f.deleteErr != nil {
		return f.deleteErr
	}
	delete(f.stores[store], string(key))
	return nil
}

// Range visits the keys of store in [lo, hi) in order.
func (f *fakeRuntime) Range(store string, lo, hi []byte, fn func(k, v []byte) bool) error {
	for _, k := range slices.Sorted(maps.Keys(f.stores[store])) {
		if k >= string(lo) && (hi == nil || k < string(hi)) && !fn([]byte(k), f.stores[store][k]) {
			break
		}
	}
	return nil
}

func (f *fakeRuntime) Emit(topic string, key, value []byte, ts time.Time, headers []topology.Header) error {
	if f.emitErr != nil {
		return f.emitErr
	}
	f.emitted = append(f.emitted, emitted{Topic: topic, Key: key, Value: value, Timestamp: ts, Headers: headers})
	return nil
}

// buildErrors flattens the error returned by Build (a single *BuildError or
// an errors.Join of them) and requires every part to be a *BuildError.
func buildErrors(t testing.TB, err error) []*topology.BuildError {
	t.Helper()
	require.Error(t, err)
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	out := make([]*topology.BuildError, 0, len(parts))
	for _, p := range parts {
		var be *topology.BuildError
		require.True(t, errors.As(p, &be), "not a *BuildError: %T %v", p, p)
		out = append(out, be)
	}
	return out
}

// noop is a processor body that accepts every record.
func noop[K, V any](*topology.Call, topology.Record[K, V]) error { return nil }

type order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
}

type total struct {
	Customer string `json:"customer"`
	Orders   int64  `json:"orders"`
	Amount   int64  `json:"amount"`
}
