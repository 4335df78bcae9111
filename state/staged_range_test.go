package state

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Range over a Staged sees exactly the model: committed keys overlaid by
// the staged puts and deletes, within the bounds, in key order, and
// nothing of another partition or store.
func TestStagedRangeMatchesModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{{}, {0x00}, {0x00, 0x00}, []byte("a"), []byte("ab"), []byte("b"), {0xff}, {0xff, 0xff}, []byte("m")}
	pick := func() []byte { return keys[rng.IntN(len(keys))] }
	for round := range 200 {
		db := openMem(t)
		model := make(map[string]string)
		stage(t, db, func(s *Staged) {
			for range rng.IntN(8) {
				k, v := pick(), []byte{byte(round), byte(rng.IntN(256))}
				require.NoError(t, s.Put("s", 3, k, v))
				model[string(k)] = string(v)
			}
			// Neighbours that must never show up.
			require.NoError(t, s.Put("s", 4, []byte("a"), []byte("other partition")))
			require.NoError(t, s.Put("s", 2, []byte{0xff}, []byte("other partition")))
			require.NoError(t, s.Put("ss", 3, []byte("a"), []byte("other store")))
		})
		s := db.NewStaged()
		for range rng.IntN(8) {
			k := pick()
			if rng.IntN(2) == 0 {
				require.NoError(t, s.Delete("s", 3, k))
				delete(model, string(k))
			} else {
				v := []byte{0xee, byte(rng.IntN(256))}
				require.NoError(t, s.Put("s", 3, k, v))
				model[string(k)] = string(v)
			}
		}
		var lo, hi []byte
		if rng.IntN(3) > 0 {
			lo = pick()
		}
		if rng.IntN(3) > 0 {
			hi = pick()
		}
		var want []string
		for _, k := range slices.Sorted(maps.Keys(model)) {
			if bytes.Compare([]byte(k), lo) >= 0 && (hi == nil || bytes.Compare([]byte(k), hi) < 0) {
				want = append(want, k+"="+model[k])
			}
		}
		var got []string
		require.NoError(t, s.Range("s", 3, lo, hi, func(k, v []byte) bool {
			got = append(got, string(k)+"="+string(v))
			return true
		}))
		require.Equal(t, want, got, "round %d, lo %x, hi %x", round, lo, hi)
		if len(want) > 1 {
			n := 0
			require.NoError(t, s.Range("s", 3, lo, hi, func(k, v []byte) bool { n++; return false }))
			require.Equal(t, 1, n, "fn returning false stops the range")
		}
		s.Discard()
		require.ErrorIs(t, s.Range("s", 3, nil, nil, func(k, v []byte) bool { return true }), ErrFinished)
	}
}

// A range longer than one chunk continues right after the last key of the
// previous chunk, and fn may read the DB again.
func TestStagedRangeAcrossChunks(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	n := 3*rangeChunk + 7
	stage(t, db, func(s *Staged) {
		for i := range n {
			require.NoError(t, s.Put("s", 0, key(i), []byte{byte(i)}))
		}
	})
	s := db.NewStaged()
	defer s.Discard()
	var want []string
	for i := range n {
		switch {
		case i%3 == 0:
			require.NoError(t, s.Delete("s", 0, key(i)))
		default:
			want = append(want, string(key(i)))
		}
	}
	require.NoError(t, s.Put("s", 0, append(key(rangeChunk), 0), []byte("between")))
	want = append(want, string(append(key(rangeChunk), 0)))
	slices.Sort(want)
	var got []string
	require.NoError(t, s.Range("s", 0, nil, nil, func(k, v []byte) bool {
		got = append(got, string(k))
		_, ok, err := s.Get("s", 0, k) // reads again while ranging
		require.NoError(t, err)
		require.True(t, ok)
		return true
	}))
	require.Equal(t, want, got)
}
