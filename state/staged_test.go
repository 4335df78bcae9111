package state

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStagedReadYourWrites(t *testing.T) {
	t.Parallel()
	type op struct {
		del   bool
		value string
	}
	tests := []struct {
		name      string
		committed *string // committed value before the Staged, nil for none
		ops       []op
		want      *string // nil for absent
	}{
		{name: "absent", want: nil},
		{name: "fall through to committed", committed: ptr("c"), want: ptr("c")},
		{name: "put", ops: []op{{value: "a"}}, want: ptr("a")},
		{name: "overwrite", ops: []op{{value: "a"}, {value: "b"}}, want: ptr("b")},
		{name: "overwrite committed", committed: ptr("c"), ops: []op{{value: "a"}}, want: ptr("a")},
		{name: "delete committed", committed: ptr("c"), ops: []op{{del: true}}, want: nil},
		{name: "put then delete", ops: []op{{value: "a"}, {del: true}}, want: nil},
		{name: "delete then put", committed: ptr("c"), ops: []op{{del: true}, {value: "b"}}, want: ptr("b")},
		{name: "empty value is a value", committed: ptr("c"), ops: []op{{value: ""}}, want: ptr("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openMem(t)
			if tt.committed != nil {
				stage(t, db, func(s *Staged) { require.NoError(t, s.Put("s", 0, []byte("k"), []byte(*tt.committed))) })
			}
			s := db.NewStaged()
			defer s.Discard()
			for _, o := range tt.ops {
				if o.del {
					require.NoError(t, s.Delete("s", 0, []byte("k")))
				} else {
					require.NoError(t, s.Put("s", 0, []byte("k"), []byte(o.value)))
				}
			}
			v, ok, err := s.Get("s", 0, []byte("k"))
			require.NoError(t, err)
			if tt.want == nil {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, *tt.want, string(v))
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestStagedIsolation checks that the same user key in two partitions and
// two stores (including a store whose name prefixes another's) are
// distinct keys.
func TestStagedIsolation(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	targets := []struct {
		store string
		p     int32
	}{{"a", 0}, {"a", 1}, {"ab", 0}, {"ab", 1}, {"b", 256}}
	stage(t, db, func(s *Staged) {
		for i, tg := range targets {
			require.NoError(t, s.Put(tg.store, tg.p, []byte("k"), fmt.Appendf(nil, "v%d", i)))
		}
	})
	s := db.NewStaged()
	defer s.Discard()
	require.NoError(t, s.Delete("a", 1, []byte("k")))
	for i, tg := range targets {
		v, ok, err := s.Get(tg.store, tg.p, []byte("k"))
		require.NoError(t, err)
		if i == 1 {
			require.False(t, ok)
			continue
		}
		require.True(t, ok)
		require.Equal(t, fmt.Sprintf("v%d", i), string(v))
		requireGet(t, db, tg.store, tg.p, "k", fmt.Appendf(nil, "v%d", i))
	}
}

// TestDiscardLeavesDBUntouched proves invariant S1 at this layer: staged
// writes of a transaction that did not commit never reach the DB.
func TestDiscardLeavesDBUntouched(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		require.NoError(t, s.Put("s", 0, []byte("k"), []byte("committed")))
		require.NoError(t, s.SetCheckpoint("s", 0, 7))
		require.NoError(t, s.SetInputCheckpoint("in", 0, 70))
	})
	s := db.NewStaged()
	require.NoError(t, s.Put("s", 0, []byte("k"), []byte("uncommitted")))
	require.NoError(t, s.Put("s", 0, []byte("new"), []byte("uncommitted")))
	require.NoError(t, s.Delete("s", 0, []byte("k")))
	require.NoError(t, s.SetCheckpoint("s", 0, 8))
	require.NoError(t, s.SetInputCheckpoint("in", 0, 80))
	requireGet(t, db, "s", 0, "k", []byte("committed")) // not visible before Apply
	s.Discard()
	s.Discard() // idempotent

	requireGet(t, db, "s", 0, "k", []byte("committed"))
	requireGet(t, db, "s", 0, "new", nil)
	requireCheckpoints(t, db, 7, 70)
	require.Equal(t, map[string]string{"k": "committed"}, dumpPartition(t, db, "s", 0))
}

func requireCheckpoints(t *testing.T, db *DB, changelog, input int64) {
	t.Helper()
	c, ok, err := db.Checkpoint("s", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, changelog, c)
	in, ok, err := db.InputCheckpoint("in", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, input, in)
}

// TestApplyAtomicVisibility checks that readers see every write of an
// applied batch or none: a concurrent reader's point-in-time iterator
// always finds all keys at one generation.
func TestApplyAtomicVisibility(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	const keys, generations = 50, 100
	var (
		wg      sync.WaitGroup
		readErr error
	)
	done := make(chan struct{})
	wg.Go(func() {
		for readErr == nil {
			select {
			case <-done:
				return
			default:
				readErr = checkOneGeneration(db, keys)
			}
		}
	})
	for g := range generations {
		s := db.NewStaged()
		for i := range keys {
			require.NoError(t, s.Put("s", 0, key(i), fmt.Appendf(nil, "gen-%d", g)))
		}
		require.NoError(t, s.Apply())
	}
	close(done)
	wg.Wait()
	require.NoError(t, readErr)
	require.Len(t, dumpPartition(t, db, "s", 0), keys)
}

// checkOneGeneration reads partition s/0 through one iterator and reports
// a batch seen partially.
func checkOneGeneration(db *DB, keys int) error {
	it, err := db.NewIter("s", 0)
	if err != nil {
		return err
	}
	defer it.Close()
	n, first := 0, ""
	for it.Next() {
		if n == 0 {
			first = string(it.Value())
		}
		if string(it.Value()) != first {
			return fmt.Errorf("keys from two generations: %q and %q", first, it.Value())
		}
		n++
	}
	if n != 0 && n != keys {
		return fmt.Errorf("partial batch: %d of %d keys", n, keys)
	}
	return it.Err()
}

func TestStagedFinished(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		finish func(*Staged) error
	}{
		{"apply", (*Staged).Apply},
		{"discard", func(s *Staged) error { s.Discard(); return nil }},
		{"apply empty", func(s *Staged) error { return s.Apply() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openMem(t)
			s := db.NewStaged()
			if tt.name != "apply empty" {
				require.NoError(t, s.Put("s", 0, []byte("k"), []byte("v")))
				require.False(t, s.Empty())
				require.Equal(t, uint32(1), s.Count())
			}
			require.NoError(t, tt.finish(s))
			require.True(t, s.Empty())
			require.Zero(t, s.Count())
			require.ErrorIs(t, s.Apply(), ErrFinished)
			require.ErrorIs(t, s.Put("s", 0, []byte("k"), nil), ErrFinished)
			require.ErrorIs(t, s.Delete("s", 0, []byte("k")), ErrFinished)
			require.ErrorIs(t, s.SetCheckpoint("s", 0, 1), ErrFinished)
			require.ErrorIs(t, s.SetInputCheckpoint("in", 0, 1), ErrFinished)
			_, _, err := s.Get("s", 0, []byte("k"))
			require.ErrorIs(t, err, ErrFinished)
			s.Discard() // safe after Apply
		})
	}
}

func TestStagedInvalidArguments(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	tests := []struct {
		name string
		call func(*Staged) error
	}{
		{"put empty store", func(s *Staged) error { return s.Put("", 0, []byte("k"), nil) }},
		{"put negative partition", func(s *Staged) error { return s.Put("s", -1, []byte("k"), nil) }},
		{"delete empty store", func(s *Staged) error { return s.Delete("", 0, []byte("k")) }},
		{"get empty store", func(s *Staged) error { _, _, err := s.Get("", 0, nil); return err }},
		{"checkpoint empty store", func(s *Staged) error { return s.SetCheckpoint("", 0, 1) }},
		{"checkpoint negative offset", func(s *Staged) error { return s.SetCheckpoint("s", 0, -1) }},
		{"input empty topic", func(s *Staged) error { return s.SetInputCheckpoint("", 0, 1) }},
		{"input negative partition", func(s *Staged) error { return s.SetInputCheckpoint("in", -3, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := db.NewStaged()
			defer s.Discard()
			require.ErrorIs(t, tt.call(s), ErrInvalidArgument)
			require.True(t, s.Empty())
		})
	}
}

func TestStagedAfterClose(t *testing.T) {
	t.Parallel()
	db, err := Open("db", Options{FS: memFS()})
	require.NoError(t, err)
	s := db.NewStaged()
	require.NoError(t, s.Put("s", 0, []byte("k"), []byte("v")))
	require.NoError(t, db.Close())
	_, _, err = s.Get("s", 0, []byte("k"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.Apply(), ErrClosed)
	s.Discard()
}
