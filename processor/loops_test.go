package processor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

// TestLoops runs instances of several transaction loops on one state
// directory each: every loop is a member with its own transactional ID,
// the outputs and the shared local state are exactly-once through a second
// instance joining and leaving (partitions move between instances and
// between the loops of one), queries are answered by whichever loop owns
// the key, and the instance restarts with fewer loops on the same
// directory, restoring from the checkpoints its loops left.
func TestLoops(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6)
	brokers := c.ListenAddrs()
	topo := counterTopology(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	const keys = 12
	produceInputs(t, brokers, keys, 10, nil)

	a := start(t, topo, brokers, dirA, "a", Loops(3))
	require.Equal(t, []string{"app-a", "app-a-loop-1", "app-a-loop-2"}, a.p.TransactionalIDs())
	require.Equal(t, "app-a", a.p.TransactionalID())
	a.waitRecords(t, keys*10)
	waitFor(t, 30*time.Second, "every loop owns partitions and all are ready", func() bool {
		for _, l := range a.p.loops {
			if len(l.Assigned()) == 0 {
				return false
			}
		}
		return a.p.Ready() && len(a.p.Assigned()) == 6
	})
	require.Len(t, a.p.Lag(), 6)
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		r, err := a.p.Query(context.Background(), "counts", []byte(key))
		require.NoError(t, err, key)
		require.True(t, r.Found, key)
		v, err := topology.Int64().Decode(r.Value)
		require.NoError(t, err)
		require.EqualValues(t, 10, v, key)
	}

	// A second instance joins: partitions move to it; then it leaves and
	// its partitions go back to a's loops, maybe to another loop than
	// before, which restores them from the shared local state.
	b := start(t, topo, brokers, dirB, "b", Loops(2))
	waitFor(t, 30*time.Second, "b owns partitions", func() bool { return len(b.p.Assigned()) > 0 && b.p.Ready() })
	produceInputs(t, brokers, keys, 5, nil)
	waitFor(t, 60*time.Second, "15 per key committed", func() bool {
		return a.p.Stats().Records+b.p.Stats().Records == keys*15
	})
	b.close(t)
	produceInputs(t, brokers, keys, 5, nil)
	a.waitRecords(t, keys*15+keys*5-b.p.Stats().Records)
	a.close(t)

	perKey := map[string]int{}
	for k := range keys {
		perKey["k"+strconv.Itoa(k)] = 20
	}
	checkCounts(t, readAll(t, brokers, "out"), keys, perKey)
	local := localCounts(t, dirA, 6)
	for k, n := range perKey {
		require.EqualValues(t, n, local[k], "a's local count of %s", k)
	}

	// The same instance with one loop on the same directory: its state is
	// the loops' state, restored from their checkpoints.
	produceInputs(t, brokers, keys, 1, nil)
	a1 := start(t, topo, brokers, dirA, "a")
	a1.waitRecords(t, keys)
	a1.close(t)
	for k := range perKey {
		perKey[k]++
	}
	checkCounts(t, readAll(t, brokers, "out"), keys, perKey)
	local = localCounts(t, dirA, 6)
	for k, n := range perKey {
		require.EqualValues(t, n, local[k], "local count of %s after the restart", k)
	}
}

// TestLoopsRestoreWaitsForEveryLoopsApply: loops share the local state, so
// a partition's restore (which reads its local checkpoint) waits for a
// commit being applied by any loop, not only its own: the partition may
// have just moved from that loop.
func TestLoopsRestoreWaitsForEveryLoopsApply(t *testing.T) {
	t.Parallel()
	p, err := New(counterTopology(t), Brokers("x:9092"), Group("app"), InstanceID("a"), StateDir(t.TempDir()), Loops(2))
	require.NoError(t, err)
	require.Len(t, p.loops, 2)
	for holder := range 2 {
		for restorer := range 2 {
			mu := &p.loops[holder].tasks.applyMu
			mu.Lock()
			waited := make(chan struct{})
			go func() {
				p.loops[restorer].waitApplies()
				close(waited)
			}()
			select {
			case <-waited:
				t.Fatalf("loop %d's restore did not wait for loop %d's apply", restorer, holder)
			case <-time.After(50 * time.Millisecond):
			}
			mu.Unlock()
			<-waited
		}
	}
}

// TestLoopsOption: Loops is validated, and each loop's instance ID is
// derived from the instance's.
func TestLoopsOption(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, maxLoops + 1} {
		_, err := New(counterTopology(t), Brokers("x:9092"), Group("app"), StateDir(t.TempDir()), Loops(n))
		require.ErrorIs(t, err, ErrConfig, "Loops(%d)", n)
		require.ErrorContains(t, err, "loops")
	}
	p, err := New(counterTopology(t), Brokers("x:9092"), Group("app"), InstanceID("i"), StateDir(t.TempDir()), Loops(1))
	require.NoError(t, err)
	require.Empty(t, p.loops)
	require.Equal(t, []string{"app-i"}, p.TransactionalIDs())
}
