package mirror

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Crashes at random points of random transactions, while the source keeps
// receiving committed and aborted transactions and a second instance comes
// and goes: after a last clean run the target equals the source exactly.
// The seed is fixed so that a failure can be replayed.
func TestCrashSoak(t *testing.T) {
	t.Parallel()
	const seed = 16
	rng := rand.New(rand.NewPCG(seed, seed))
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 4)

	p := c.producer(t, "src-txn")
	committed, batch := 0, 0
	// produce writes k source transactions, every fourth aborted, while
	// the mirror runs.
	produce := func(k int) {
		for range k {
			commit := batch%4 != 1
			produceTxn(t, p, "events", fmt.Sprintf("s%d", batch), 15, commit, time.Now())
			if commit {
				committed += 15
			}
			batch++
		}
	}
	produce(10)

	points := []string{"produced", "flushed", "committing"}
	var other *running
	for round := range 6 {
		point, after := points[rng.IntN(len(points))], 1+rng.IntN(4)
		n := 0
		m := c.newMirror(t, "a", MaxRecordsPerTxn(10+rng.IntN(40)))
		m.crash = func(at string) bool {
			if at == point {
				n++
			}
			return at == point && n == after
		}
		r := start(t, m)
		if round == 2 {
			other = start(t, c.newMirror(t, "b", MaxRecordsPerTxn(25)))
		}
		if round == 4 {
			require.NoError(t, other.stop(t))
		}
		// Input keeps coming until the crash point is hit.
		var err error
		deadline := time.Now().Add(30 * time.Second)
	wait:
		for {
			select {
			case err = <-r.done:
				break wait
			default:
			}
			require.True(t, time.Now().Before(deadline), "round %d: the crash point was never hit", round)
			produce(1)
		}
		require.True(t, errors.Is(err, errCrashed), "round %d: %v", round, err)
	}
	r := start(t, c.newMirror(t, "a"))
	rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, committed, src)
	require.Equal(t, committed, tgt)
	require.NoError(t, r.stop(t))
}
