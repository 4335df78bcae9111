package exactlytest

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// StateDir is a processor's local state directory, opened for reading
// after the processor stopped (the directory is locked while open).
type StateDir struct {
	db *state.DB
}

// OpenStateDir opens the state directory dir. The caller must Close it.
func OpenStateDir(dir string) (*StateDir, error) {
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		return nil, fmt.Errorf("opening state %s: %w", dir, err)
	}
	return &StateDir{db: db}, nil
}

// Close closes the directory.
func (s *StateDir) Close() error { return s.db.Close() }

// DB returns the underlying state database.
func (s *StateDir) DB() *state.DB { return s.db }

// Checkpoint returns the changelog offset store partition p's local copy
// was committed at, and whether it has one.
func (s *StateDir) Checkpoint(store string, p int32) (int64, bool, error) {
	return s.db.Checkpoint(store, p)
}

// InputCheckpoint returns the offset of source topic partition p the
// processor committed store partition p's local copy with, and whether it
// has one. It names the checkpoint as the processor does.
func (s *StateDir) InputCheckpoint(store, topic string, p int32) (int64, bool, error) {
	return s.db.InputCheckpoint(InputCheckpointName(store, topic), p)
}

// InputCheckpointName is the name under which the processor keeps, in
// the state database (state.DB.InputCheckpoint), the input checkpoint of
// a store's source topic: for tests that write a state directory as the
// processor would. A processor test pins it to the processor's own.
func InputCheckpointName(store, topic string) string { return store + "\x00" + topic }

// Partitions returns the partitions of store with data or a checkpoint,
// in order.
func (s *StateDir) Partitions(store string) ([]int32, error) {
	return s.db.Partitions(store)
}

// Store returns the committed data of the given partitions of store (nil:
// every partition it has, see Partitions): per partition, key to value
// bytes. A partition without data is absent.
func (s *StateDir) Store(store string, partitions []int32) (map[int32]map[string][]byte, error) {
	return StoreAs(s, store, partitions, topology.String(), topology.Bytes())
}

// StoreAs is Store decoding keys and values with ks and vs.
func StoreAs[K comparable, V any](s *StateDir, store string, partitions []int32, ks topology.Serde[K], vs topology.Serde[V]) (map[int32]map[K]V, error) {
	if partitions == nil {
		var err error
		if partitions, err = s.db.Partitions(store); err != nil {
			return nil, err
		}
	}
	out := make(map[int32]map[K]V)
	for _, p := range partitions {
		all, errf := state.NewView(s.db, store, p, ks, vs).All()
		for k, v := range all {
			if out[p] == nil {
				out[p] = make(map[K]V)
			}
			out[p][k] = v
		}
		if err := errf(); err != nil {
			return nil, fmt.Errorf("reading %s partition %d: %w", store, p, err)
		}
	}
	return out, nil
}

// ReadStore opens the state directory dir, reads store as StoreAs does
// and closes it.
func ReadStore[K comparable, V any](dir, store string, partitions []int32, ks topology.Serde[K], vs topology.Serde[V]) (map[int32]map[K]V, error) {
	s, err := OpenStateDir(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return StoreAs(s, store, partitions, ks, vs)
}

// Merge returns the union of the partitions of a store read by StoreAs:
// with keys partitioned, each key is in one partition.
func Merge[K comparable, V any](parts map[int32]map[K]V) map[K]V {
	out := make(map[K]V)
	for _, m := range parts {
		maps.Copy(out, m)
	}
	return out
}

// DiffState is the E4 comparison: it returns a line for every key whose
// value in got (a store's local state) differs from want (the fold of the
// committed input), is missing or is extra, in key order.
func DiffState[K cmp.Ordered, V any](want, got map[K]V) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("key %v: missing from local state, fold %v", k, want[k]))
		case !reflect.DeepEqual(g, want[k]):
			out = append(out, fmt.Sprintf("key %v: local state %v, fold %v", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("key %v: in local state %v but not in the fold", k, got[k]))
		}
	}
	return out
}
