package mirror

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
