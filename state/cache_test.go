package state

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// stagedGet reads key through a fresh Staged, as the next transaction
// would: through the value cache.
func stagedGet(t testing.TB, db *DB, store string, p int32, k string) (string, bool) {
	t.Helper()
	s := db.NewStaged()
	defer s.Discard()
	v, ok, err := s.Get(store, p, []byte(k))
	require.NoError(t, err)
	return string(v), ok
}

func requireStagedGet(t testing.TB, db *DB, k string, want string, wantOK bool) {
	t.Helper()
	v, ok := stagedGet(t, db, "s", 0, k)
	require.Equal(t, wantOK, ok, "%q present", k)
	require.Equal(t, want, v, "%q", k)
}

// TestValueCacheFollowsCommittedWrites reads a key into the cache and then
// changes the committed value by each path that writes committed data: the
// next transaction must read the new value, never the cached one.
func TestValueCacheFollowsCommittedWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		write   func(t *testing.T, db *DB)
		want    string
		present bool
	}{
		{"applied put", func(t *testing.T, db *DB) {
			stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("k"), []byte("new"))) })
		}, "new", true},
		{"applied delete", func(t *testing.T, db *DB) {
			stage(t, db, func(s *Staged) { require.NoError(t, s.Delete("s", 0, []byte("k"))) })
		}, "", false},
		{"discarded put", func(t *testing.T, db *DB) {
			s := db.NewStaged()
			require.NoError(t, s.Put("s", 0, []byte("k"), []byte("new")))
			s.Discard()
		}, "old", true},
		{"restored put", func(t *testing.T, db *DB) {
			r := db.NewRestorer("s", 0, 10)
			require.NoError(t, r.Put(5, []byte("k"), []byte("restored")))
			require.NoError(t, r.Flush())
		}, "restored", true},
		{"restored delete", func(t *testing.T, db *DB) {
			r := db.NewRestorer("s", 0, 10)
			require.NoError(t, r.Delete(5, []byte("k")))
			require.NoError(t, r.Flush())
		}, "", false},
		{"wipe", func(t *testing.T, db *DB) { require.NoError(t, db.WipePartition("s", 0)) }, "", false},
		{"reset", func(t *testing.T, db *DB) {
			require.NoError(t, db.ResetPartition("s", 0, []string{"in"}, []byte("binding")))
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openMem(t)
			stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("k"), []byte("old"))) })
			requireStagedGet(t, db, "k", "old", true)
			keys, _ := db.cache.stats()
			require.Equal(t, 1, keys, "the read fills the cache")
			tt.write(t, db)
			requireStagedGet(t, db, "k", tt.want, tt.present)
			requireGet(t, db, "s", 0, "k", map[bool][]byte{true: []byte(tt.want)}[tt.present])
		})
	}
}

// TestValueCacheCallerOwnsValues checks that a caller changing a value it
// got or staged changes neither the cache nor the staged write.
func TestValueCacheCallerOwnsValues(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("k"), []byte("old"))) })
	s := db.NewStaged()
	v, _, err := s.Get("s", 0, []byte("k")) // fills the cache
	require.NoError(t, err)
	v[0] = 'X'
	v, _, err = s.Get("s", 0, []byte("k")) // from the cache
	require.NoError(t, err)
	require.Equal(t, "old", string(v))
	v[0] = 'X'
	put := []byte("new")
	require.NoError(t, s.Put("s", 0, []byte("k"), put))
	put[0] = 'X'
	v, _, err = s.Get("s", 0, []byte("k")) // the staged write
	require.NoError(t, err)
	require.Equal(t, "new", string(v))
	v[0] = 'X'
	require.NoError(t, s.Apply())
	requireStagedGet(t, db, "k", "new", true)
}

// TestValueCacheSkipsRacedFill checks the generation rule: a value read
// from Pebble before a write and offered to the cache after it is not
// cached, or the stale value would outlive the write.
func TestValueCacheSkipsRacedFill(t *testing.T) {
	t.Parallel()
	c := newValueCache(1 << 20)
	sp := storePartition{"s", 0}
	_, ok, gen := c.get(sp, []byte("k"))
	require.False(t, ok)
	c.dropPartition(sp) // a restore flush between the read and the fill
	c.fill(sp, []byte("k"), []byte("stale"), gen)
	_, ok, _ = c.get(sp, []byte("k"))
	require.False(t, ok, "a fill older than a write must not be cached")
	_, _, gen = c.get(sp, []byte("k"))
	c.fill(sp, []byte("k"), []byte("fresh"), gen)
	v, ok, _ := c.get(sp, []byte("k"))
	require.True(t, ok)
	require.Equal(t, "fresh", string(v))
}

// TestValueCacheBound reads more than the cache holds: it stays within its
// bytes and every read stays right.
func TestValueCacheBound(t *testing.T) {
	t.Parallel()
	const size = 8 << 10
	db, err := Open("db", Options{FS: vfs.NewMem(), ValueCacheSize: size})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	stage(t, db, func(s *Staged) {
		for i := range 1000 {
			require.NoError(t, s.Put("s", 0, key(i), fmt.Appendf(nil, "value-%d", i)))
		}
	})
	for round := range 3 {
		for i := range 1000 {
			v, ok := stagedGet(t, db, "s", 0, string(key(i)))
			require.True(t, ok, "round %d key %d", round, i)
			require.Equal(t, fmt.Sprintf("value-%d", i), v)
			_, bytes := db.cache.stats()
			require.LessOrEqual(t, bytes, int64(size))
		}
	}
	keys, _ := db.cache.stats()
	require.Positive(t, keys)

	off, err := Open("db", Options{FS: vfs.NewMem(), ValueCacheSize: -1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, off.Close()) })
	stage(t, off, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("k"), []byte("v"))) })
	requireStagedGet(t, off, "k", "v", true)
	keys, _ = off.cache.stats()
	require.Zero(t, keys, "a negative size turns the cache off")
}

// TestValueCacheProperty runs random transactions (applied or discarded),
// restores, wipes and resets over a few keys of two partitions, with a
// cache small enough to evict, against a model of the committed data:
// every staged read must equal the model, as staged or committed.
func TestValueCacheProperty(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 0))
			db, err := Open("db", Options{FS: vfs.NewMem(), MemTableSize: 1 << 20, ValueCacheSize: 600})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			committed := map[int32]map[string]string{0: {}, 1: {}}
			offsets := map[int32]int64{}
			k := func() string { return fmt.Sprintf("k%d", rng.IntN(12)) }
			for step := range 300 {
				p := int32(rng.IntN(2))
				switch op := rng.IntN(10); {
				case op < 6: // a transaction
					s := db.NewStaged()
					staged := map[string]*string{}
					for range 1 + rng.IntN(6) {
						key := k()
						switch rng.IntN(3) {
						case 0:
							v := fmt.Sprintf("v%d-%d", step, rng.IntN(100))
							require.NoError(t, s.Put("s", p, []byte(key), []byte(v)))
							staged[key] = &v
						case 1:
							require.NoError(t, s.Delete("s", p, []byte(key)))
							staged[key] = nil
						}
						got, ok, err := s.Get("s", p, []byte(key))
						require.NoError(t, err)
						want, wantOK := committed[p][key]
						if w, isStaged := staged[key]; isStaged {
							want, wantOK = "", w != nil
							if w != nil {
								want = *w
							}
						}
						require.Equal(t, wantOK, ok, "step %d %d/%s", step, p, key)
						require.Equal(t, want, string(got), "step %d %d/%s", step, p, key)
					}
					if rng.IntN(4) == 0 {
						s.Discard()
						continue
					}
					require.NoError(t, s.Apply())
					for key, w := range staged {
						if w == nil {
							delete(committed[p], key)
						} else {
							committed[p][key] = *w
						}
					}
				case op < 8: // a restore of a few records
					r := db.NewRestorer("s", p, 2)
					for range 1 + rng.IntN(3) {
						offsets[p]++
						key := k()
						if rng.IntN(3) == 0 {
							require.NoError(t, r.Delete(offsets[p], []byte(key)))
							delete(committed[p], key)
						} else {
							v := fmt.Sprintf("r%d", offsets[p])
							require.NoError(t, r.Put(offsets[p], []byte(key), []byte(v)))
							committed[p][key] = v
						}
					}
					require.NoError(t, r.Flush())
				case op < 9:
					require.NoError(t, db.WipePartition("s", p))
					committed[p], offsets[p] = map[string]string{}, 0
				default:
					require.NoError(t, db.ResetPartition("s", p, nil, nil))
					committed[p], offsets[p] = map[string]string{}, 0
				}
			}
		})
	}
}

// TestValueCacheConcurrentRestore reads keys of one partition in one
// goroutine while another restores new values into it: once the restore
// returned, every read sees its values.
func TestValueCacheConcurrentRestore(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		for i := range 20 {
			require.NoError(t, s.Put("s", 0, key(i), []byte("old")))
		}
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := db.NewStaged()
			for i := range 20 {
				if _, _, err := s.Get("s", 0, key(i)); err != nil {
					t.Error(err)
				}
			}
			s.Discard()
		}
	}()
	for round := range 50 {
		r := db.NewRestorer("s", 0, 100)
		for i := range 20 {
			require.NoError(t, r.Put(int64(round*20+i), key(i), fmt.Appendf(nil, "r%d", round)))
		}
		require.NoError(t, r.Flush())
		for i := range 20 {
			v, ok := stagedGet(t, db, "s", 0, string(key(i)))
			require.True(t, ok)
			require.Equal(t, fmt.Sprintf("r%d", round), v, "round %d key %d", round, i)
		}
	}
	close(stop)
	wg.Wait()
}
