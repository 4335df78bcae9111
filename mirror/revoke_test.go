package mirror

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/internal/groupscope"
	"github.com/exactly-stream/exactly/internal/kfaketest"
)

// A second instance joins while the first is inside its first round of
// transactions, which holds all four partitions' records:
//   - "flushed": the records are produced, the commit not yet decided. The
//     revoked partitions' transactions must abort (records and positions
//     both), the kept ones' commit, and the new owner copies the revoked
//     partitions from the old positions.
//   - "committing": the commit is decided and in flight. The revoke
//     callback waits for it, so the partitions move only after it, and the
//     new owner reads the positions it committed.
//
// Either way the target ends exactly equal to the source.
func TestRevokeMidTransaction(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"flushed", "committing"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			c := newClusters(t)
			mkTopic(t, c.srcAdm, "events", 4)
			p := c.producer(t, "src-txn")
			produceTxn(t, p, "events", "a", 80, true, time.Now())

			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			n := 0
			a := c.newMirror(t, "a", MaxRecordsPerTxn(100), CommitInterval(300*time.Millisecond))
			a.crash = func(at string) bool {
				if at == point {
					if n++; n == 1 {
						once.Do(func() { close(held) })
						<-release
					}
				}
				return false
			}
			ra := start(t, a)
			<-held
			rb := start(t, c.newMirror(t, "b", MaxRecordsPerTxn(20)))
			// Let B's join reach the group (A's revoke runs now, or
			// waits for A's commit in flight), then let A go on.
			time.Sleep(300 * time.Millisecond)
			close(release)
			produceTxn(t, p, "events", "b", 80, true, time.Now())
			rep := c.waitMirrored(t, []string{"events"}, 30*time.Second)
			src, tgt := totalRecords(rep)
			require.Equal(t, 160, src)
			require.Equal(t, 160, tgt)
			if point == "flushed" {
				require.Positive(t, a.Stats().TxnsAborted, "the revoked partitions' transactions aborted")
				require.Positive(t, a.Stats().TxnsCommitted, "the kept partitions' transactions committed")
			}
			require.NoError(t, ra.stop(t))
			require.NoError(t, rb.stop(t))
		})
	}
}

// TestStopDuringAHeldRebalance stops a mirror whose JoinGroup the source
// coordinator holds, as it does during a rebalance until every member
// rejoined or the rebalance timeout (60 s by default) passed. Close returns
// without waiting for that answer, and the copy stays exact.
//
// Regression: Run waited in kgo's Close, which waits for the JoinGroup
// answer before it leaves: the mirror chaos soak in CI saw a SIGTERMed
// instance take over a minute to exit, past any deployment's grace period.
func TestStopDuringAHeldRebalance(t *testing.T) {
	t.Parallel()
	c := newClusters(t)
	mkTopic(t, c.srcAdm, "events", 4)
	p := c.producer(t, "src-txn")
	produceTxn(t, p, "events", "a", 40, true, time.Now())
	a := start(t, c.newMirror(t, "a"))
	c.waitMirrored(t, []string{"events"}, 30*time.Second)

	groups, err := c.srcAdm.DescribeGroups(ctxT(t), "mm")
	require.NoError(t, err)
	require.Len(t, groups["mm"].Members, 1)
	memberA := groups["mm"].Members[0].MemberID
	held, _ := kfaketest.HoldRequests(t, c.src, kmsg.JoinGroup, func(req kmsg.Request) bool {
		return req.(*kmsg.JoinGroupRequest).MemberID == memberA
	})
	start(t, c.newMirror(t, "b")) // the group rebalances; a's rejoin is held
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("mirror a never rejoined")
	}

	stopped := make(chan error, 1)
	go func() {
		a.m.Close()
		stopped <- <-a.done
	}()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(groupscope.LeaveTimeout + 15*time.Second):
		t.Fatal("Run is still waiting for the held JoinGroup")
	}
	produceTxn(t, p, "events", "b", 40, true, time.Now())
	rep := c.waitMirrored(t, []string{"events"}, 60*time.Second)
	src, tgt := totalRecords(rep)
	require.Equal(t, 80, src)
	require.Equal(t, src, tgt)
}
