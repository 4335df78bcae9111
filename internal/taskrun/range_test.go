package taskrun

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// stagedTxn is a Txn over a state.Staged that drops outputs.
type stagedTxn struct{ s *state.Staged }

func (x stagedTxn) Get(store string, part int32, key []byte) ([]byte, bool, error) {
	return x.s.Get(store, part, key)
}

func (x stagedTxn) Range(store string, part int32, lo, hi []byte, fn func(k, v []byte) bool) error {
	return x.s.Range(store, part, lo, hi, fn)
}
func (x stagedTxn) Put(store string, part int32, k, v []byte) error {
	return x.s.Put(store, part, k, v)
}
func (x stagedTxn) Delete(store string, part int32, k []byte) error {
	return x.s.Delete(store, part, k)
}
func (x stagedTxn) Emit(*Output, *topology.Input) {}
func (x stagedTxn) Count(string, string, int64)   {}

// A record's Range sees its own held writes over the transaction's, the
// last write of a key winning, exactly as Get would read each key; and it
// stops when fn says so.
func TestRuntimeRangeMatchesGet(t *testing.T) {
	db, err := state.Open("db", state.Options{FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20})
	require.NoError(t, err)
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	keys := []string{"", "a", "a\x00", "ab", "b", "c", "\xff"}
	for round := range 300 {
		staged := db.NewStaged()
		model := make(map[string]string)
		write := func(put func(k, v []byte) error, del func(k []byte) error) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				require.NoError(t, del([]byte(k)))
				delete(model, k)
				return
			}
			v := []byte{byte(round), byte(rng.IntN(256))}
			require.NoError(t, put([]byte(k), v))
			model[k] = string(v)
		}
		for range rng.IntN(6) { // the transaction's earlier records
			write(func(k, v []byte) error { return staged.Put("s", 1, k, v) }, func(k []byte) error { return staged.Delete("s", 1, k) })
		}
		var rt Runtime
		rt.Reset(stagedTxn{staged}, 1)
		for range rng.IntN(6) { // this record's held writes
			write(func(k, v []byte) error { return rt.Put("s", k, v) }, func(k []byte) error { return rt.Delete("s", k) })
		}
		require.NoError(t, rt.Put("other", []byte("b"), []byte("other store")))
		var lo, hi []byte
		if rng.IntN(3) > 0 {
			lo = []byte(keys[rng.IntN(len(keys))])
		}
		if rng.IntN(3) > 0 {
			hi = []byte(keys[rng.IntN(len(keys))])
		}
		var want, got []string
		for _, k := range slices.Sorted(maps.Keys(model)) {
			if bytes.Compare([]byte(k), lo) >= 0 && (hi == nil || bytes.Compare([]byte(k), hi) < 0) {
				want = append(want, k+"="+model[k])
				v, ok, err := rt.Get("s", []byte(k))
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, model[k], string(v), "Get agrees with the model")
			}
		}
		require.NoError(t, rt.Range("s", lo, hi, func(k, v []byte) bool {
			got = append(got, string(k)+"="+string(v))
			return true
		}))
		require.Equal(t, want, got, "round %d, lo %q, hi %q", round, lo, hi)
		for stop := 1; stop < len(want); stop++ {
			got = got[:0]
			require.NoError(t, rt.Range("s", lo, hi, func(k, v []byte) bool {
				got = append(got, string(k)+"="+string(v))
				return len(got) < stop
			}))
			require.Equal(t, want[:stop], got, "stopped after %d", stop)
		}
		staged.Discard()
	}
}
