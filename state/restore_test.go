package state

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// changelogRecord is one record of a changelog partition as a Restorer
// consumes it.
type changelogRecord struct {
	offset int64
	kind   recordKind
	key    string
	value  string
}

type recordKind int

const (
	recordPut recordKind = iota
	recordDelete
	recordSkip
)

// feed feeds recs to r.
func feed(r *Restorer, recs []changelogRecord) error {
	for _, rec := range recs {
		var err error
		switch rec.kind {
		case recordPut:
			err = r.Put(rec.offset, []byte(rec.key), []byte(rec.value))
		case recordDelete:
			err = r.Delete(rec.offset, []byte(rec.key))
		case recordSkip:
			err = r.Skip(rec.offset)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fold returns the data the records up to and including offset leave.
func fold(recs []changelogRecord, upTo int64) map[string]string {
	m := make(map[string]string)
	for _, rec := range recs {
		if rec.offset > upTo {
			break
		}
		switch rec.kind {
		case recordPut:
			m[rec.key] = rec.value
		case recordDelete:
			delete(m, rec.key)
		}
	}
	return m
}

func TestRestorer(t *testing.T) {
	t.Parallel()
	put := func(o int64, k, v string) changelogRecord { return changelogRecord{o, recordPut, k, v} }
	del := func(o int64, k string) changelogRecord { return changelogRecord{o, recordDelete, k, ""} }
	skip := func(o int64) changelogRecord { return changelogRecord{o, recordSkip, "", ""} }
	tests := []struct {
		name         string
		batchRecords int
		recs         []changelogRecord
		wantApplied  int64
	}{
		{"puts", 0, []changelogRecord{put(0, "a", "1"), put(1, "b", "2")}, 2},
		{"overwrite", 0, []changelogRecord{put(0, "a", "1"), put(1, "a", "2")}, 2},
		{"tombstone", 0, []changelogRecord{put(0, "a", "1"), put(1, "b", "2"), del(2, "a")}, 3},
		{"tombstone of absent key", 0, []changelogRecord{del(5, "a")}, 1},
		{"empty value is not a tombstone", 0, []changelogRecord{put(0, "a", "1"), put(1, "a", "")}, 2},
		{"skips and gaps", 0, []changelogRecord{skip(0), put(3, "a", "1"), skip(4), skip(9)}, 1},
		{"only skips", 0, []changelogRecord{skip(0), skip(1)}, 0},
		{"batch of one", 1, []changelogRecord{put(0, "a", "1"), del(1, "a"), put(2, "b", "2")}, 3},
		{"several batches", 3, manyRecords(20), 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openMem(t)
			r := db.NewRestorer("s", 4, tt.batchRecords)
			require.NoError(t, feed(r, tt.recs))
			require.NoError(t, r.Flush())
			require.NoError(t, r.Flush()) // nothing pending
			last := tt.recs[len(tt.recs)-1].offset
			off, ok := r.Offset()
			require.True(t, ok)
			require.Equal(t, last, off)
			require.Equal(t, tt.wantApplied, r.Applied())
			requireRestored(t, db, "s", 4, tt.recs, last)
		})
	}
}

// requireRestored asserts that store partition holds exactly the fold of
// recs up to checkpoint, and that checkpoint is stored.
func requireRestored(t *testing.T, db *DB, store string, p int32, recs []changelogRecord, checkpoint int64) {
	t.Helper()
	c, ok, err := db.Checkpoint(store, p)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, checkpoint, c)
	require.Equal(t, fold(recs, checkpoint), dumpPartition(t, db, store, p))
}

func manyRecords(n int) []changelogRecord {
	recs := make([]changelogRecord, n)
	for i := range recs {
		recs[i] = changelogRecord{offset: int64(i), kind: recordPut, key: fmt.Sprint(i % 7), value: fmt.Sprint(i)}
		if i%5 == 4 {
			recs[i].kind = recordDelete
		}
	}
	return recs
}

// TestRestorerBatches checks that data becomes visible only with its
// checkpoint, once per batchRecords records.
func TestRestorerBatches(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	recs := manyRecords(10)
	r := db.NewRestorer("s", 0, 4)
	for i, rec := range recs {
		require.NoError(t, feed(r, recs[i:i+1]))
		flushed := int64((i+1)/4*4 - 1) // offset of the last record of the last full batch
		if flushed < 0 {
			require.Empty(t, dumpPartition(t, db, "s", 0), "record %d", rec.offset)
			_, ok, err := db.Checkpoint("s", 0)
			require.NoError(t, err)
			require.False(t, ok)
			continue
		}
		requireRestored(t, db, "s", 0, recs, flushed)
	}
	require.NoError(t, r.Flush())
	requireRestored(t, db, "s", 0, recs, 9)
}

// TestRestorerResume restores in two sessions, as after a crash or a
// revocation mid-restore, and checks offsets may not go back.
func TestRestorerResume(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	recs := manyRecords(30)
	r := db.NewRestorer("s", 0, 7)
	require.NoError(t, feed(r, recs[:17]))
	r.Discard() // records 14..16 were pending: dropped
	require.ErrorIs(t, r.Skip(100), ErrFinished)
	requireRestored(t, db, "s", 0, recs, 13)

	r = db.NewRestorer("s", 0, 7)
	require.ErrorIs(t, r.Put(13, []byte("x"), nil), ErrOffsetOrder, "at the checkpoint")
	require.ErrorIs(t, r.Skip(2), ErrOffsetOrder, "below the checkpoint")
	require.NoError(t, feed(r, recs[14:]))
	require.ErrorIs(t, r.Skip(29), ErrOffsetOrder, "repeated offset")
	require.ErrorIs(t, r.Skip(-1), ErrInvalidArgument)
	require.NoError(t, r.Flush())
	requireRestored(t, db, "s", 0, recs, 29)
	require.Equal(t, int64(16), r.Applied())
}

// TestRestorerAfterWipe restores from the start after a wipe.
func TestRestorerAfterWipe(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	r := db.NewRestorer("s", 0, 0)
	require.NoError(t, r.Put(50, []byte("stale"), []byte("v")))
	require.NoError(t, r.Flush())
	require.NoError(t, db.WipePartition("s", 0))
	recs := manyRecords(5)
	r = db.NewRestorer("s", 0, 0)
	require.NoError(t, feed(r, recs))
	require.NoError(t, r.Flush())
	requireRestored(t, db, "s", 0, recs, 4)
}

func TestRestorerInvalid(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	r := db.NewRestorer("", 0, 0)
	require.ErrorIs(t, r.Skip(0), ErrInvalidArgument)
	require.ErrorIs(t, r.Flush(), ErrInvalidArgument, "errors are sticky")
	r = db.NewRestorer("s", -1, 0)
	require.ErrorIs(t, r.Delete(0, []byte("k")), ErrInvalidArgument)
}

func TestRestorerInputCheckpoint(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	r := db.NewRestorer("s", 2, 0)
	require.NoError(t, r.Put(0, []byte("k"), []byte("v")))
	require.NoError(t, r.SetInputCheckpoint("s\x00in", 41, 1))
	require.NoError(t, r.Skip(2))
	require.NoError(t, r.Flush())
	require.EqualValues(t, 1, r.Applied(), "an input checkpoint is not a data record")

	got, ok, err := db.InputCheckpoint("s\x00in", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 41, got)
	cp, ok, err := db.Checkpoint("s", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 2, cp)

	require.NoError(t, db.DeleteInputCheckpoint("s\x00in", 2))
	_, ok, err = db.InputCheckpoint("s\x00in", 2)
	require.NoError(t, err)
	require.False(t, ok)
}
