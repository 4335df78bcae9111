package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// stagedBenchDB opens a DB for the staged benchmarks, on disk unless -short,
// holding keys committed keys of valueSize bytes in store "customers"
// partition 3.
func stagedBenchDB(b *testing.B, keys, valueSize int) *DB {
	return stagedBenchDBWith(b, Options{}, keys, valueSize)
}

func stagedBenchDBWith(b *testing.B, opts Options, keys, valueSize int) *DB {
	b.Helper()
	dir := b.TempDir()
	if testing.Short() {
		opts.FS, dir = vfs.NewMem(), "db"
	}
	db, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	value := make([]byte, valueSize)
	s := db.NewStaged()
	for i := range keys {
		if err := s.Put("customers", 3, stagedBenchKey(i), value); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 9999 {
			if err := s.Apply(); err != nil {
				b.Fatal(err)
			}
			s = db.NewStaged()
		}
	}
	if err := s.Apply(); err != nil {
		b.Fatal(err)
	}
	return db
}

func stagedBenchKey(i int) []byte { return fmt.Appendf(nil, "c-%07d", i) }

// BenchmarkStagedGetPut is the order service's state access per record:
// Get a customer (committed, or staged earlier in the transaction), Put it
// back, in transactions of 1000 records applied at the end, over 1000
// committed customers, by value size (a customer's JSON grows with its
// orders).
func BenchmarkStagedGetPut(b *testing.B) {
	for _, size := range []int{100, 1000, 4000} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			const customers = 1000
			db := stagedBenchDB(b, customers, size)
			value := make([]byte, size)
			keys := make([][]byte, customers)
			for i := range keys {
				keys[i] = stagedBenchKey(i)
			}
			s := db.NewStaged()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[(i*7919)%customers] // spread, with repeats inside a transaction
				if _, ok, err := s.Get("customers", 3, k); err != nil || !ok {
					b.Fatal(ok, err)
				}
				if err := s.Put("customers", 3, k, value); err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					if err := s.Apply(); err != nil {
						b.Fatal(err)
					}
					s = db.NewStaged()
				}
			}
			s.Discard()
		})
	}
}

// BenchmarkStagedGetCommitted measures a Get that misses the staged batch
// and reads committed state, over 100,000 keys.
func BenchmarkStagedGetCommitted(b *testing.B) {
	const keys = 100_000
	db := stagedBenchDB(b, keys, 100)
	s := db.NewStaged()
	defer s.Discard()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.Get("customers", 3, stagedBenchKey((i*7919)%keys)); err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
}

// BenchmarkStagedGetMiss measures a Get of a key that is nowhere, over
// 1,000,000 committed keys flushed to tables (4 MiB memtables): the order
// service's duplicate check of every new order id.
func BenchmarkStagedGetMiss(b *testing.B) {
	const keys = 1_000_000
	db := stagedBenchDBWith(b, Options{MemTableSize: 4 << 20}, keys, 16)
	s := db.NewStaged()
	defer s.Discard()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.Get("customers", 3, fmt.Appendf(nil, "c-%07dx", (i*7919)%keys)); err != nil || ok {
			b.Fatal(ok, err)
		}
		i++
	}
}

// BenchmarkRestorerCustomers measures restoring small customer records
// (80-byte values, distinct keys, as a changelog of one order per customer
// holds) with the processor's restore batch of 10,000.
func BenchmarkRestorerCustomers(b *testing.B) {
	db := stagedBenchDB(b, 0, 0)
	value := make([]byte, 80)
	r := db.NewRestorer("customers", 3, 10000)
	var key []byte
	b.ReportAllocs()
	offset := int64(0)
	for b.Loop() {
		key = fmt.Appendf(key[:0], "c-%07d", offset%1_000_000)
		if err := r.Put(offset, key, value); err != nil {
			b.Fatal(err)
		}
		offset++
	}
	if err := r.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkStagedGetLarge measures a transaction's read of a store of 1M
// and 10M keys (16-byte keys, 100-byte values, restored as from a
// changelog, on disk), the state reads that must stay fast as a store
// grows:
//   - hot: a working set of 1,000 keys read again and again, as the order
//     service reads its customers: answered by the value cache after the
//     first read of each;
//   - cold: keys spread over the whole store, most read for the first time:
//     Pebble's point lookup (the value cache holds only a sliver);
//   - miss: keys that are nowhere, as the order service's check of a new
//     order id.
//
// The 10M store takes about a minute to build; -short leaves it out.
func BenchmarkStagedGetLarge(b *testing.B) {
	sizes := []int{1_000_000, 10_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			r := db.NewRestorer("customers", 3, 10000)
			value := make([]byte, 100)
			for i := range n {
				if err := r.Put(int64(i), largeKey(i), value); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.Flush(); err != nil {
				b.Fatal(err)
			}
			// Reads only from here: measure them once the fill's compactions
			// are done, not while they rewrite the tables.
			if err := db.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct {
				name string
				key  func(i int) []byte
				ok   bool
			}{
				{"hot", func(i int) []byte { return largeKey((i * 7919) % 1000 * (n / 1000)) }, true},
				{"cold", func(i int) []byte { return largeKey((i * 7919) % n) }, true},
				{"miss", func(i int) []byte { return append(largeKey((i*7919)%n), 'x') }, false},
			} {
				b.Run(c.name, func(b *testing.B) {
					s := db.NewStaged()
					defer s.Discard()
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, ok, err := s.Get("customers", 3, c.key(i)); err != nil || ok != c.ok {
							b.Fatal(ok, err)
						}
						i++
					}
				})
			}
		})
	}
}

func largeKey(i int) []byte { return fmt.Appendf(nil, "customer-%07d", i) }
