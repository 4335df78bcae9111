package state

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// benchDB opens a DB for benchmarks: on disk unless -short (the WAL is
// written either way; Apply never fsyncs).
func benchDB(b *testing.B) *DB {
	b.Helper()
	opts := Options{}
	dir := b.TempDir()
	if testing.Short() {
		opts.FS, dir = vfs.NewMem(), "db"
	}
	db, err := Open(dir, opts)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	return db
}

// BenchmarkStagedPutGet measures one staged write and one read-your-write
// of a 100-byte value, in transactions of 1000 writes.
func BenchmarkStagedPutGet(b *testing.B) {
	db := benchDB(b)
	value := make([]byte, 100)
	keys := benchKeys(1000)
	s := db.NewStaged()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		if err := s.Put("orders", 3, k, value); err != nil {
			b.Fatal(err)
		}
		if _, ok, err := s.Get("orders", 3, k); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if i++; i%1000 == 0 {
			s.Discard()
			s = db.NewStaged()
		}
	}
	s.Discard()
}

// BenchmarkApply1000 measures staging and applying a transaction of 1000
// 100-byte writes plus its checkpoints.
func BenchmarkApply1000(b *testing.B) {
	db := benchDB(b)
	value := make([]byte, 100)
	keys := benchKeys(1000)
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		s := db.NewStaged()
		for _, k := range keys {
			if err := s.Put("orders", 3, k, value); err != nil {
				b.Fatal(err)
			}
		}
		n++
		if err := s.SetCheckpoint("orders", 3, n); err != nil {
			b.Fatal(err)
		}
		if err := s.SetInputCheckpoint("orders-in", 3, n); err != nil {
			b.Fatal(err)
		}
		if err := s.Apply(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(keys))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRestorer measures restore throughput of 100-byte records over
// 100k distinct keys with the default batch size.
func BenchmarkRestorer(b *testing.B) {
	for _, batch := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := benchDB(b)
			value := make([]byte, 100)
			keys := benchKeys(100000)
			r := db.NewRestorer("orders", 3, batch)
			b.ReportAllocs()
			offset := int64(0)
			for b.Loop() {
				if err := r.Put(offset, keys[offset%int64(len(keys))], value); err != nil {
					b.Fatal(err)
				}
				offset++
			}
			if err := r.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = key(i)
	}
	return keys
}
