package state

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"

	"github.com/exactly-stream/exactly/topology"
	"github.com/stretchr/testify/require"
)

func TestIter(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		// Neighbours that must stay out of s/1: other partitions, a store
		// whose name extends "s", and a checkpoint.
		for _, tg := range []struct {
			store string
			p     int32
		}{{"s", 0}, {"s", 2}, {"s\x00", 1}, {"sa", 1}} {
			require.NoError(t, s.Put(tg.store, tg.p, []byte("x"), []byte("neighbour")))
		}
		require.NoError(t, s.SetCheckpoint("s", 1, 3))
		for _, k := range []string{"c", "a", "", "b\xff", "b"} {
			require.NoError(t, s.Put("s", 1, []byte(k), []byte("v"+k)))
		}
	})
	it, err := db.NewIter("s", 1)
	require.NoError(t, err)
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
		require.Equal(t, "v"+string(it.Key()), string(it.Value()))
	}
	require.NoError(t, it.Err())
	require.False(t, it.Next(), "stays exhausted")
	require.NoError(t, it.Close())
	require.NoError(t, it.Close(), "idempotent")
	require.Equal(t, []string{"", "a", "b", "b\xff", "c"}, keys)

	it, err = db.NewIter("s", 9)
	require.NoError(t, err)
	require.False(t, it.Next())
	require.NoError(t, it.Close())

	_, err = db.NewIter("", 0)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// TestIterPointInTime checks that an iterator does not see batches applied
// after its creation.
func TestIterPointInTime(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("a"), []byte("1"))) })
	it, err := db.NewIter("s", 0)
	require.NoError(t, err)
	defer it.Close()
	stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("b"), []byte("2"))) })
	require.True(t, it.Next())
	require.False(t, it.Next())
}

// TestIterClosedByDB checks that Close closes iterators left open, which
// then report ErrClosed instead of crashing.
func TestIterClosedByDB(t *testing.T) {
	t.Parallel()
	db, err := Open("db", Options{FS: memFS()})
	require.NoError(t, err)
	stage(t, db, func(s *Staged) {
		require.NoError(t, s.Put("s", 0, []byte("a"), []byte("1")))
		require.NoError(t, s.Put("s", 0, []byte("b"), []byte("2")))
	})
	it, err := db.NewIter("s", 0)
	require.NoError(t, err)
	require.True(t, it.Next())
	k := it.Key()
	require.NoError(t, db.Close())
	require.Equal(t, "a", string(k), "keys are copies that outlive the DB")
	require.False(t, it.Next())
	require.ErrorIs(t, it.Err(), ErrClosed)
	require.ErrorIs(t, it.Close(), ErrClosed)
}

// intSerde encodes ints as decimal text, failing to decode anything else.
var intSerde = topology.SerdeFuncs[int]{
	EncodeFunc: func(v int) ([]byte, error) { return strconv.AppendInt(nil, int64(v), 10), nil },
	DecodeFunc: func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
}

func TestView(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	want := map[string]int{"a": 1, "b": 2, "c": 3}
	stage(t, db, func(s *Staged) {
		for k, v := range want {
			require.NoError(t, s.Put("s", 0, []byte(k), fmt.Appendf(nil, "%d", v)))
		}
	})
	v := NewView(db, "s", 0, topology.String(), intSerde)

	got, ok, err := v.Get("b")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, got)
	_, ok, err = v.Get("zz")
	require.NoError(t, err)
	require.False(t, ok)

	all, errf := v.All()
	require.Equal(t, want, maps.Collect(all))
	require.NoError(t, errf())

	var first []string
	for k := range all {
		first = append(first, k)
		break
	}
	require.Equal(t, []string{"a"}, first)
	require.NoError(t, errf(), "breaking early is not an error")
}

func TestViewDecodeErrors(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		require.NoError(t, s.Put("s", 0, []byte("1"), []byte("10")))
		require.NoError(t, s.Put("s", 0, []byte("2"), []byte("not a number")))
		require.NoError(t, s.Put("s", 0, []byte("3"), []byte("30")))
		require.NoError(t, s.Put("s", 1, []byte("x"), []byte("10"))) // bad key
	})
	v := NewView(db, "s", 0, intSerde, intSerde)
	_, _, err := v.Get(2)
	require.ErrorIs(t, err, strconv.ErrSyntax)
	require.ErrorContains(t, err, "decoding value of key 32 in s/0")

	all, errf := v.All()
	got := maps.Collect(all)
	require.Equal(t, map[int]int{1: 10}, got, "iteration stops at the bad value")
	require.ErrorIs(t, errf(), strconv.ErrSyntax)

	all, errf = NewView(db, "s", 1, intSerde, intSerde).All()
	require.Empty(t, maps.Collect(all))
	require.ErrorContains(t, errf(), "decoding key 78 in s/1")

	encodeErr := errors.New("cannot encode")
	bad := topology.SerdeFuncs[int]{
		EncodeFunc: func(int) ([]byte, error) { return nil, encodeErr },
		DecodeFunc: intSerde.DecodeFunc,
	}
	_, _, err = NewView(db, "s", 0, bad, intSerde).Get(1)
	require.ErrorIs(t, err, encodeErr)

	all, errf = NewView(db, "", 0, intSerde, intSerde).All()
	require.Empty(t, maps.Collect(all))
	require.ErrorIs(t, errf(), ErrInvalidArgument)
}
