package orders

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/state"
)

// TestCheckLocalStateSkipsUncommittedPartition is a regression test: a
// partition no directory has a checkpoint for (no transaction ever
// consumed it) ended the check with no violations, so every later
// partition went unchecked and E4 passed whatever their state.
func TestCheckLocalStateSkipsUncommittedPartition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := state.Open(dir, state.Options{})
	require.NoError(t, err)
	s := db.NewStaged()
	v, err := CustomerSerde().Encode(Customer{OrderCount: 1, TotalCents: 4, OrderIDs: []string{"o-1"}})
	require.NoError(t, err)
	require.NoError(t, s.Put(StoreCustomers, 1, []byte("c-1"), v))
	require.NoError(t, s.SetCheckpoint(StoreCustomers, 1, 0))
	require.NoError(t, s.Apply())
	require.NoError(t, db.Close())

	got, err := CheckLocalState([]string{dir}, 2, map[string]Customer{"c-1": {OrderCount: 1, TotalCents: 3, OrderIDs: []string{"o-1"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"E4: customer c-1: local state count=1 total=4, fold count=1 total=3"}, got)
}
