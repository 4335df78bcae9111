package state

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzKeyIsolation: a data key of (store, partition) starts with the
// partition prefix of (store2, partition2) exactly when they are the same
// store partition, so iteration, wipes and restores of one store partition
// never touch another's keys, whatever the names and user keys.
func FuzzKeyIsolation(f *testing.F) {
	f.Add("customers", int32(0), []byte("c-1"), "customers", int32(1))
	f.Add("a", int32(1), []byte("b"), "ab", int32(1))
	f.Add("ab", int32(0), []byte{}, "a", int32(0))
	f.Add("s", int32(256), []byte{0, 0, 1, 0}, "s", int32(1))
	f.Fuzz(func(t *testing.T, store string, p int32, key []byte, store2 string, p2 int32) {
		if store == "" || store2 == "" || p < 0 || p2 < 0 {
			return
		}
		k := appendDataKey(nil, store, p, key)
		prefix := appendPartition(nil, tagData, store2, p2)
		same := store == store2 && p == p2
		require.Equal(t, same, bytes.HasPrefix(k, prefix), "key %x prefix %x", k, prefix)
		got, err := decodePartition(k, len(appendName(nil, tagData, store)))
		require.NoError(t, err)
		require.Equal(t, p, got)
	})
}

// FuzzCheckpointValue: checkpoint values decode only from their own
// encoding, and never panic.
func FuzzCheckpointValue(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		off, err := decodeOffset(v)
		if len(v) != offsetLen {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.NoError(t, err)
		require.Equal(t, v, encodeOffset(off))
	})
}
