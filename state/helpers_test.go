package state

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// openMem opens a DB on a fresh in-memory filesystem, closed at cleanup.
func openMem(t testing.TB) *DB {
	t.Helper()
	db, err := Open("db", Options{FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

// stage applies fn to a new Staged and applies it.
func stage(t testing.TB, db *DB, fn func(s *Staged)) {
	t.Helper()
	s := db.NewStaged()
	fn(s)
	require.NoError(t, s.Apply())
}

// requireGet asserts the committed value of key (absent when want is nil).
func requireGet(t testing.TB, db *DB, store string, p int32, key string, want []byte) {
	t.Helper()
	v, ok, err := db.Get(store, p, []byte(key))
	require.NoError(t, err)
	if want == nil {
		require.False(t, ok, "%s/%d %q: want absent, got %q", store, p, key, v)
		return
	}
	require.True(t, ok, "%s/%d %q: want %q, got absent", store, p, key, want)
	require.Equal(t, want, v)
}

// dumpPartition returns the committed data of store partition.
func dumpPartition(t testing.TB, db *DB, store string, p int32) map[string]string {
	t.Helper()
	it, err := db.NewIter(store, p)
	require.NoError(t, err)
	m := make(map[string]string)
	for it.Next() {
		m[string(it.Key())] = string(it.Value())
	}
	require.NoError(t, it.Err())
	require.NoError(t, it.Close())
	return m
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%06d", i) }
