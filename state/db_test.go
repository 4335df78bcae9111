package state

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

func memFS() vfs.FS { return vfs.NewMem() }

func TestCheckpointsRoundtrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		offsets []int64 // applied in order, one batch each
	}{
		{"zero", []int64{0}},
		{"one", []int64{42}},
		{"advancing", []int64{1, 2, 1000}},
		{"max", []int64{1<<63 - 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openMem(t)
			_, ok, err := db.Checkpoint("s", 3)
			require.NoError(t, err)
			require.False(t, ok)
			_, ok, err = db.InputCheckpoint("in", 3)
			require.NoError(t, err)
			require.False(t, ok)
			for _, o := range tt.offsets {
				stage(t, db, func(s *Staged) {
					require.NoError(t, s.SetCheckpoint("s", 3, o))
					require.NoError(t, s.SetInputCheckpoint("in", 3, o+1))
				})
			}
			last := tt.offsets[len(tt.offsets)-1]
			c, ok, err := db.Checkpoint("s", 3)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, last, c)
			in, ok, err := db.InputCheckpoint("in", 3)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, last+1, in)
			// Neighbours are untouched: the changelog and input
			// keyspaces are distinct even for equal names.
			for _, p := range []int32{2, 4} {
				_, ok, err = db.Checkpoint("s", p)
				require.NoError(t, err)
				require.False(t, ok)
			}
			_, ok, err = db.InputCheckpoint("s", 3)
			require.NoError(t, err)
			require.False(t, ok)
		})
	}
}

func TestCorruptCheckpoint(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	require.NoError(t, db.pdb.Set(appendPartition(nil, tagCheckpoint, "s", 0), []byte{1, 2, 3}, pebble.NoSync))
	_, _, err := db.Checkpoint("s", 0)
	require.ErrorIs(t, err, ErrCorrupt)
	r := db.NewRestorer("s", 0, 0)
	require.ErrorIs(t, r.Put(0, []byte("k"), nil), ErrCorrupt)
}

func TestWipePartition(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		for _, store := range []string{"s", "s2"} {
			for p := range int32(3) {
				for i := range 10 {
					require.NoError(t, s.Put(store, p, key(i), []byte("v")))
				}
				require.NoError(t, s.SetCheckpoint(store, p, 100))
			}
		}
		require.NoError(t, s.SetInputCheckpoint("in", 1, 9))
	})
	require.NoError(t, db.WipePartition("s", 1))

	require.Empty(t, dumpPartition(t, db, "s", 1))
	_, ok, err := db.Checkpoint("s", 1)
	require.NoError(t, err)
	require.False(t, ok)
	in, ok, err := db.InputCheckpoint("in", 1)
	require.NoError(t, err)
	require.True(t, ok, "input checkpoints are not the store's")
	require.Equal(t, int64(9), in)
	for _, tg := range []struct {
		store string
		p     int32
	}{{"s", 0}, {"s", 2}, {"s2", 1}} {
		require.Len(t, dumpPartition(t, db, tg.store, tg.p), 10)
		_, ok, err := db.Checkpoint(tg.store, tg.p)
		require.NoError(t, err)
		require.True(t, ok)
	}
	parts, err := db.Partitions("s")
	require.NoError(t, err)
	require.Equal(t, []int32{0, 2}, parts)
	require.ErrorIs(t, db.WipePartition("", 0), ErrInvalidArgument)
}

// TestResetPartition: one batch wipes a store partition's data, its
// checkpoint and the named input checkpoints, and binds the partition to a
// changelog identity; other partitions and inputs keep theirs, and a wipe
// drops the binding.
func TestResetPartition(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	stage(t, db, func(s *Staged) {
		for p := range int32(2) {
			require.NoError(t, s.Put("s", p, key(1), []byte("v")))
			require.NoError(t, s.SetCheckpoint("s", p, 7))
			require.NoError(t, s.SetInputCheckpoint("s/in", p, 3))
			require.NoError(t, s.SetInputCheckpoint("other", p, 4))
		}
	})
	_, ok, err := db.Binding("s", 1)
	require.NoError(t, err)
	require.False(t, ok, "no binding before one is set")

	id := []byte("0123456789abcdef")
	require.NoError(t, db.ResetPartition("s", 1, []string{"s/in"}, id))
	require.Empty(t, dumpPartition(t, db, "s", 1))
	_, ok, err = db.Checkpoint("s", 1)
	require.NoError(t, err)
	require.False(t, ok)
	_, ok, err = db.InputCheckpoint("s/in", 1)
	require.NoError(t, err)
	require.False(t, ok, "the named input checkpoint goes with the data")
	_, ok, err = db.InputCheckpoint("other", 1)
	require.NoError(t, err)
	require.True(t, ok, "an input not named stays")
	got, ok, err := db.Binding("s", 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, id, got)

	// Partition 0 is untouched.
	require.Len(t, dumpPartition(t, db, "s", 0), 1)
	_, ok, err = db.InputCheckpoint("s/in", 0)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = db.Binding("s", 0)
	require.NoError(t, err)
	require.False(t, ok)

	require.NoError(t, db.WipePartition("s", 1))
	_, ok, err = db.Binding("s", 1)
	require.NoError(t, err)
	require.False(t, ok, "a wipe drops the binding")
	require.ErrorIs(t, db.ResetPartition("s", 0, []string{""}, id), ErrInvalidArgument)
}

func TestPartitions(t *testing.T) {
	t.Parallel()
	db := openMem(t)
	parts, err := db.Partitions("s")
	require.NoError(t, err)
	require.Empty(t, parts)
	stage(t, db, func(s *Staged) {
		for i := range 5 {
			require.NoError(t, s.Put("s", 7, key(i), nil))
		}
		require.NoError(t, s.Put("s", 1<<31-1, []byte("k"), nil))
		require.NoError(t, s.Put("s", 0, []byte("k"), nil))
		require.NoError(t, s.SetCheckpoint("s", 7, 1))
		require.NoError(t, s.SetCheckpoint("s", 3, 1)) // checkpoint only
		require.NoError(t, s.Put("s2", 5, []byte("k"), nil))
		require.NoError(t, s.Put("t", 5, []byte("k"), nil))
		require.NoError(t, s.SetInputCheckpoint("s", 9, 1)) // a topic, not a store
	})
	parts, err = db.Partitions("s")
	require.NoError(t, err)
	require.Equal(t, []int32{0, 3, 7, 1<<31 - 1}, parts)
	_, err = db.Partitions("")
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
	}{
		{"mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "db" }},
		{"disk", func(t *testing.T) (vfs.FS, string) { return vfs.Default, filepath.Join(t.TempDir(), "db") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs, dir := tt.fs(t)
			db, err := Open(dir, Options{FS: fs})
			require.NoError(t, err)
			_, err = Open(dir, Options{FS: fs})
			require.ErrorIs(t, err, ErrLocked)
			require.ErrorContains(t, err, "opening state in "+dir)
			if fs == vfs.Default {
				alias := filepath.Join(filepath.Dir(dir), ".", "link")
				require.NoError(t, os.Symlink(dir, alias))
				_, err = Open(alias+"/.", Options{FS: fs})
				require.ErrorIs(t, err, ErrLocked, "another spelling of the same directory")
			}
			require.NoError(t, db.Close())
			db, err = Open(dir, Options{FS: fs}) // released on Close
			require.NoError(t, err)
			require.NoError(t, db.Close())
		})
	}
}

// lockHelperEnv names the directory a re-executed test binary holds open
// for TestOpenLockedByOtherProcess.
const lockHelperEnv = "STATE_TEST_LOCK_HELPER_DIR"

func TestOpenLockedByOtherProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	_, err = Open(dir, Options{})
	require.ErrorIs(t, err, ErrLocked)

	require.NoError(t, stdin.Close()) // the helper closes its DB and exits
	require.NoError(t, cmd.Wait())
	db, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

// TestLockHelperProcess is not a test: TestOpenLockedByOtherProcess runs
// the test binary with it to hold a DB open in another process until its
// stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	db, err := Open(dir, Options{})
	require.NoError(t, err)
	_, err = os.Stdout.WriteString("locked\n")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, db.Close())
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := Open(filepath.Join(file, "db"), Options{}) // a file on the path
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrLocked)
	_, err = Open("db", Options{FS: memFS(), CacheSize: -1})
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	var o Options
	o.EnsureDefaults()
	require.Equal(t, vfs.Default, o.FS)
	require.Equal(t, int64(64<<20), o.CacheSize)
	require.Equal(t, uint64(32<<20), o.MemTableSize)
	require.NotNil(t, o.Logger)
	require.NoError(t, o.Validate())

	tests := []struct {
		name   string
		mutate func(*Options)
	}{
		{"negative cache", func(o *Options) { o.CacheSize = -1 }},
		{"huge memtable", func(o *Options) { o.MemTableSize = 4 << 30 }},
		{"nil fs", func(o *Options) { o.FS = nil }},
		{"nil logger", func(o *Options) { o.Logger = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{}
			o.EnsureDefaults()
			tt.mutate(&o)
			require.ErrorIs(t, o.Validate(), ErrInvalidArgument)
		})
	}
}

func TestPebbleLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := pebbleLogger{slog.New(slog.NewTextHandler(&buf, nil))}
	l.Infof("hello %d", 1)
	l.Errorf("broken %s", "disk")
	require.Contains(t, buf.String(), `level=INFO msg="hello 1" component=pebble`)
	require.Contains(t, buf.String(), `level=ERROR msg="broken disk" component=pebble`)
	require.PanicsWithValue(t, "state: pebble fatal error: dead 7", func() { l.Fatalf("dead %d", 7) })
	require.Contains(t, buf.String(), `msg="dead 7" component=pebble fatal=true`)
}

func TestClosed(t *testing.T) {
	t.Parallel()
	db, err := Open("db", Options{FS: memFS()})
	require.NoError(t, err)
	require.NotNil(t, db.Metrics())
	require.NoError(t, db.Close())
	require.NoError(t, db.Close()) // idempotent

	_, _, err = db.Get("s", 0, []byte("k"))
	require.ErrorIs(t, err, ErrClosed)
	_, _, err = db.Checkpoint("s", 0)
	require.ErrorIs(t, err, ErrClosed)
	_, _, err = db.InputCheckpoint("in", 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, db.WipePartition("s", 0), ErrClosed)
	_, err = db.Partitions("s")
	require.ErrorIs(t, err, ErrClosed)
	_, err = db.NewIter("s", 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, db.NewRestorer("s", 0, 0).Skip(0), ErrClosed)
	require.Nil(t, db.Metrics())
	require.True(t, errors.Is(db.NewStaged().Apply(), ErrClosed))
}

// TestReopen checks that applied state survives a clean close.
func TestReopen(t *testing.T) {
	t.Parallel()
	fs := memFS()
	db, err := Open("db", Options{FS: fs})
	require.NoError(t, err)
	stage(t, db, func(s *Staged) {
		require.NoError(t, s.Put("s", 0, []byte("k"), []byte("v")))
		require.NoError(t, s.SetCheckpoint("s", 0, 5))
	})
	require.NoError(t, db.Close())
	db, err = Open("db", Options{FS: fs})
	require.NoError(t, err)
	defer db.Close()
	requireGet(t, db, "s", 0, "k", []byte("v"))
	c, ok, err := db.Checkpoint("s", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(5), c)
}
