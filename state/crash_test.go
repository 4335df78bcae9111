package state

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"
)

var crashSeed = flag.Uint64("state.crash-seed", 0, "seed of TestCrashRecovery (0: time based)")

// The crash workload: phase A applies committed transactions (and aborts
// some), phase B restores a changelog partition, phase C applies more
// transactions. Every committed transaction i (1-based) writes a counter
// = i together with checkpoints derived from i, so the state after a crash
// names the prefix it claims to be and can be compared with it exactly.
const (
	crashStore    = "orders"
	crashTotals   = "totals"
	crashInput    = "orders-in"
	crashRestoreP = int32(2)
	counterKey    = "\x00counter"
)

type crashOp struct {
	store string
	p     int32
	key   string
	value string
	del   bool
}

type crashTxn struct {
	ops   []crashOp
	abort bool
}

type crashWorkload struct {
	phaseA, phaseC []crashTxn
	records        []changelogRecord // restored into crashStore/crashRestoreP
	batchRecords   int
	flushOffsets   []int64 // checkpoints the restore can leave
}

// crashState is the observable state of the workload's store partitions.
type crashState struct {
	Data        map[string]map[string]string // "store/p" -> key -> value
	Checkpoints map[string]int64
	Inputs      map[string]int64
}

func newCrashWorkload(rng *rand.Rand) *crashWorkload {
	w := &crashWorkload{batchRecords: 5 + rng.IntN(40)}
	committed := 0
	gen := func(n int) []crashTxn {
		txns := make([]crashTxn, n)
		for i := range txns {
			abort := rng.IntN(5) == 0
			if !abort {
				committed++
			}
			txns[i] = genCrashTxn(rng, committed, abort)
		}
		return txns
	}
	w.phaseA = gen(40)
	w.records = genRecords(rng, 400)
	w.phaseC = gen(40)
	for i := w.batchRecords - 1; i < len(w.records); i += w.batchRecords {
		w.flushOffsets = append(w.flushOffsets, w.records[i].offset)
	}
	w.flushOffsets = append(w.flushOffsets, w.records[len(w.records)-1].offset)
	return w
}

// genCrashTxn returns transaction number n: a counter, random customer
// writes with values up to 8 KiB (so WAL records straddle blocks), and an
// abort poisons everything it touches.
func genCrashTxn(rng *rand.Rand, n int, abort bool) crashTxn {
	val := func(s string) string {
		if abort {
			s = "POISON-" + s
		}
		return s + string(bytes.Repeat([]byte{'.'}, rng.IntN(8<<10)))
	}
	ops := []crashOp{{store: crashStore, p: 0, key: counterKey, value: string(binary.BigEndian.AppendUint64(nil, uint64(n)))}}
	for range 1 + rng.IntN(4) {
		ops = append(ops, crashOp{store: crashStore, p: 0, key: fmt.Sprintf("cust-%d", rng.IntN(7)), value: val(fmt.Sprint(n))})
	}
	ops = append(ops, crashOp{store: crashTotals, p: 1, key: fmt.Sprintf("t-%d", rng.IntN(5)), value: val(fmt.Sprint(n))})
	if rng.IntN(3) == 0 {
		ops = append(ops, crashOp{store: crashStore, p: 0, key: fmt.Sprintf("cust-%d", rng.IntN(7)), del: true})
	}
	return crashTxn{ops: ops, abort: abort}
}

func genRecords(rng *rand.Rand, n int) []changelogRecord {
	recs := make([]changelogRecord, n)
	offset := int64(0)
	for i := range recs {
		offset += 1 + int64(rng.IntN(2))
		rec := changelogRecord{offset: offset, key: fmt.Sprintf("r-%d", rng.IntN(50))}
		switch r := rng.IntN(10); {
		case r < 7:
			rec.value = fmt.Sprint(offset) + string(bytes.Repeat([]byte{'.'}, rng.IntN(2<<10)))
		case r < 9:
			rec.kind = recordDelete
		default:
			rec.kind = recordSkip
		}
		recs[i] = rec
	}
	return recs
}

// snapshots returns the state after each prefix of committed transactions:
// snapshots[k] is the state after k of them.
func (w *crashWorkload) snapshots() []crashState {
	cur := crashState{Data: map[string]map[string]string{}, Checkpoints: map[string]int64{}, Inputs: map[string]int64{}}
	snaps := []crashState{cloneCrashState(cur)}
	for _, tx := range slices.Concat(w.phaseA, w.phaseC) {
		if tx.abort {
			continue
		}
		for _, op := range tx.ops {
			part := fmt.Sprintf("%s/%d", op.store, op.p)
			if cur.Data[part] == nil {
				cur.Data[part] = map[string]string{}
			}
			if op.del {
				delete(cur.Data[part], op.key)
			} else {
				cur.Data[part][op.key] = op.value
			}
		}
		k := int64(len(snaps))
		cur.Checkpoints[crashStore+"/0"] = 10 * k
		cur.Checkpoints[crashTotals+"/1"] = 10*k + 1
		cur.Inputs[crashInput+"/0"] = 100 * k
		snaps = append(snaps, cloneCrashState(cur))
	}
	return snaps
}

func cloneCrashState(s crashState) crashState {
	c := crashState{Data: map[string]map[string]string{}, Checkpoints: maps.Clone(s.Checkpoints), Inputs: maps.Clone(s.Inputs)}
	for k, v := range s.Data {
		c.Data[k] = maps.Clone(v)
	}
	return c
}

// run drives the workload against db, calling mark between phases.
func (w *crashWorkload) run(db *DB, mark func(phase int)) error {
	committed := 0
	for _, tx := range w.phaseA {
		if err := runCrashTxn(db, tx, &committed); err != nil {
			return err
		}
	}
	mark(1)
	r := db.NewRestorer(crashStore, crashRestoreP, w.batchRecords)
	if err := feed(r, w.records); err != nil {
		return err
	}
	if err := r.Flush(); err != nil {
		return err
	}
	mark(2)
	for _, tx := range w.phaseC {
		if err := runCrashTxn(db, tx, &committed); err != nil {
			return err
		}
	}
	return nil
}

// runCrashTxn stages tx, checking read-your-writes of the counter, and
// applies or discards it.
func runCrashTxn(db *DB, tx crashTxn, committed *int) error {
	s := db.NewStaged()
	defer s.Discard()
	if n := readCounter(s.Get(crashStore, 0, []byte(counterKey))); n != int64(*committed) {
		return fmt.Errorf("staged read of counter: got %d, want %d", n, *committed)
	}
	for _, op := range tx.ops {
		var err error
		if op.del {
			err = s.Delete(op.store, op.p, []byte(op.key))
		} else {
			err = s.Put(op.store, op.p, []byte(op.key), []byte(op.value))
		}
		if err != nil {
			return err
		}
	}
	if tx.abort {
		return nil // the deferred Discard drops it
	}
	*committed++
	k := int64(*committed)
	if err := s.SetCheckpoint(crashStore, 0, 10*k); err != nil {
		return err
	}
	if err := s.SetCheckpoint(crashTotals, 1, 10*k+1); err != nil {
		return err
	}
	if err := s.SetInputCheckpoint(crashInput, 0, 100*k); err != nil {
		return err
	}
	return s.Apply()
}

// readCounter decodes a counter read, -1 on error.
func readCounter(v []byte, ok bool, err error) int64 {
	switch {
	case err != nil || (ok && len(v) != 8):
		return -1
	case !ok:
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// readCrashState reads the staged region of the workload from db.
func readCrashState(t *testing.T, db *DB) crashState {
	s := crashState{Data: map[string]map[string]string{}, Checkpoints: map[string]int64{}, Inputs: map[string]int64{}}
	for _, sp := range []struct {
		store string
		p     int32
	}{{crashStore, 0}, {crashTotals, 1}} {
		name := fmt.Sprintf("%s/%d", sp.store, sp.p)
		if d := dumpPartition(t, db, sp.store, sp.p); len(d) > 0 {
			s.Data[name] = d
		}
		c, ok, err := db.Checkpoint(sp.store, sp.p)
		require.NoError(t, err)
		if ok {
			s.Checkpoints[name] = c
		}
	}
	in, ok, err := db.InputCheckpoint(crashInput, 0)
	require.NoError(t, err)
	if ok {
		s.Inputs[crashInput+"/0"] = in
	}
	return s
}

// crasher takes a crash clone of a filesystem at the target-th write
// operation after it is armed, and counts write operations.
type crasher struct {
	mem     *vfs.MemFS
	armed   atomic.Bool
	writes  atomic.Int64
	target  int64
	cfg     vfs.CrashCloneCfg
	mu      sync.Mutex
	crashed *vfs.MemFS
}

func (c *crasher) inject(op errorfs.Op) error {
	if !c.armed.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	if c.writes.Add(1) == c.target {
		c.crash()
	}
	return nil
}

func (c *crasher) crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed == nil {
		c.crashed = c.mem.CrashClone(c.cfg)
	}
}

// crashOptions are small enough to flush memtables and compact during the
// workload, and make big transactions take Pebble's large-batch path.
func crashOptions(fs vfs.FS) Options {
	return Options{FS: fs, CacheSize: 1 << 20, MemTableSize: 64 << 10}
}

// TestCrashRecovery applies the crash workload on a crashable in-memory
// filesystem, takes a crash clone at a random write operation (in the
// transactions, in the restore, or after it), keeping a random share of the
// data never synced, reopens the clone and checks that it holds exactly
// the state after some prefix of the applied batches: never a partial
// batch, never an aborted transaction, a restore checkpoint that agrees
// with the restored data, and a restore that ordered itself between the
// transactions before and after it. It then resumes the restore and
// continues the transactions on the recovered state.
func TestCrashRecovery(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with: go test ./state/ -run TestCrashRecovery -state.crash-seed=%d", seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0))
	w := newCrashWorkload(rng)
	bounds := measureCrashWrites(t, w)
	t.Logf("seed %d: batchRecords %d, write operations per phase %v", seed, w.batchRecords, bounds)
	trials := 24
	if testing.Short() {
		trials = 6
	}
	for trial := range trials {
		// Stratify crash points over the three phases.
		lo, hi := int64(0), bounds[0]
		if ph := trial % 3; ph > 0 {
			lo, hi = bounds[ph-1], bounds[ph]
		}
		target := lo + 1 + rng.Int64N(max(hi-lo, 1))
		unsynced := []int{0, 100, rng.IntN(101)}[trial%3]
		cloneSeed := rng.Uint64()
		t.Run(fmt.Sprintf("trial=%d/phase=%d/write=%d/unsynced=%d", trial, trial%3, target, unsynced), func(t *testing.T) {
			t.Parallel()
			runCrashTrial(t, w, target, vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(cloneSeed, 1))})
		})
	}
}

// measureCrashWrites runs the workload once and returns the cumulative
// number of write operations at the end of each phase.
func measureCrashWrites(t *testing.T, w *crashWorkload) [3]int64 {
	c := &crasher{mem: vfs.NewCrashableMem()}
	db, err := Open("db", crashOptions(errorfs.Wrap(c.mem, errorfs.InjectorFunc(c.inject))))
	require.NoError(t, err)
	c.armed.Store(true)
	var bounds [3]int64
	require.NoError(t, w.run(db, func(phase int) { bounds[phase-1] = c.writes.Load() }))
	bounds[2] = c.writes.Load()
	require.NoError(t, db.Close())
	return bounds
}

func runCrashTrial(t *testing.T, w *crashWorkload, target int64, cfg vfs.CrashCloneCfg) {
	c := &crasher{mem: vfs.NewCrashableMem(), target: target, cfg: cfg}
	db, err := Open("db", crashOptions(errorfs.Wrap(c.mem, errorfs.InjectorFunc(c.inject))))
	require.NoError(t, err)
	c.armed.Store(true)
	require.NoError(t, w.run(db, func(int) {}))
	c.crash() // no-op when the target write happened
	require.NoError(t, db.Close())

	db, err = Open("db", crashOptions(c.crashed))
	require.NoError(t, err)
	defer db.Close()
	k := checkCrashState(t, db, w)
	rc, _, _ := db.Checkpoint(crashStore, crashRestoreP)
	t.Logf("recovered %d committed transactions, restore checkpoint %d", k, rc)
	resumeAfterCrash(t, db, w, k)
}

// checkCrashState asserts the recovered state is a prefix state and
// returns the number of committed transactions it holds.
func checkCrashState(t *testing.T, db *DB, w *crashWorkload) int {
	snaps := w.snapshots()
	got := readCrashState(t, db)
	k := int(readCounter(db.Get(crashStore, 0, []byte(counterKey))))
	require.True(t, k >= 0 && k < len(snaps), "counter %d out of range", k)
	require.Equal(t, snaps[k], got, "state is not the prefix its counter %d names", k)

	last := w.records[len(w.records)-1].offset
	c, restored, err := db.Checkpoint(crashStore, crashRestoreP)
	require.NoError(t, err)
	if !restored {
		c = -1
	} else {
		require.Contains(t, w.flushOffsets, c, "restore checkpoint not at a flush")
	}
	require.Equal(t, fold(w.records, c), dumpPartition(t, db, crashStore, crashRestoreP), "restored data disagrees with checkpoint %d", c)

	committedA := countCommitted(w.phaseA)
	if k > committedA {
		require.Equal(t, last, c, "phase C transaction applied before the restore completed")
	}
	if restored {
		require.Equal(t, committedA, min(k, committedA), "restore applied before phase A completed")
		require.GreaterOrEqual(t, k, committedA)
	}
	return k
}

func countCommitted(txns []crashTxn) int {
	n := 0
	for _, tx := range txns {
		if !tx.abort {
			n++
		}
	}
	return n
}

// resumeAfterCrash finishes the restore from its checkpoint and applies one
// more transaction on top of the k recovered ones.
func resumeAfterCrash(t *testing.T, db *DB, w *crashWorkload, k int) {
	c, ok, err := db.Checkpoint(crashStore, crashRestoreP)
	require.NoError(t, err)
	if !ok {
		c = -1
	}
	var rest []changelogRecord
	if i := slices.IndexFunc(w.records, func(r changelogRecord) bool { return r.offset > c }); i >= 0 {
		rest = w.records[i:]
	}
	r := db.NewRestorer(crashStore, crashRestoreP, w.batchRecords)
	require.NoError(t, feed(r, rest))
	require.NoError(t, r.Flush())
	requireRestored(t, db, crashStore, crashRestoreP, w.records, w.records[len(w.records)-1].offset)

	committed := k
	tx := crashTxn{ops: []crashOp{{store: crashStore, p: 0, key: counterKey, value: string(binary.BigEndian.AppendUint64(nil, uint64(k+1)))}}}
	require.NoError(t, runCrashTxn(db, tx, &committed))
	require.Equal(t, int64(k+1), readCounter(db.Get(crashStore, 0, []byte(counterKey))))
}
