package orders

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/state"
)

// partState is what one state directory holds of one partition.
type partState struct {
	checkpoint int64 // changelog checkpoint of both stores
	input      int64 // input checkpoint of TopicOrders for both stores; 0: none
	customers  map[string]Customer
	orderIDs   map[string]string
}

// writeState writes parts (by partition) into a state directory, as a
// committed transaction applies them.
func writeState(t *testing.T, dir string, parts map[int32]partState) {
	t.Helper()
	db, err := state.Open(dir, state.Options{})
	require.NoError(t, err)
	defer db.Close()
	s := db.NewStaged()
	for p, ps := range parts {
		for id, c := range ps.customers {
			v, err := CustomerSerde().Encode(c)
			require.NoError(t, err)
			require.NoError(t, s.Put(StoreCustomers, p, []byte(id), v))
		}
		for id, customer := range ps.orderIDs {
			require.NoError(t, s.Put(StoreOrderIDs, p, []byte(id), []byte(customer)))
		}
		for _, store := range OrderStores() {
			require.NoError(t, s.SetCheckpoint(store, p, ps.checkpoint))
			if ps.input > 0 {
				require.NoError(t, s.SetInputCheckpoint(exactlytest.InputCheckpointName(store, TopicOrders), p, ps.input))
			}
		}
	}
	require.NoError(t, s.Apply())
}

func TestCheckLocalState(t *testing.T) {
	t.Parallel()
	// The newest owner of partition 0 is "new"; "old" holds a stale copy
	// that must be ignored. Partition 2 was never committed to.
	expected := Expected{
		Customers: map[string]Customer{"c-1": {2, 12}, "c-2": {1, 3}},
		OrderIDs:  map[string]string{"o-1": "c-1", "o-2": "c-1", "o-3": "c-2"},
	}
	good := func() (old, cur map[int32]partState) {
		old = map[int32]partState{0: {checkpoint: 4, customers: map[string]Customer{"c-1": {1, 5}}, orderIDs: map[string]string{"o-1": "c-1"}}}
		cur = map[int32]partState{
			0: {checkpoint: 9, customers: map[string]Customer{"c-1": {2, 12}}, orderIDs: map[string]string{"o-1": "c-1", "o-2": "c-1"}},
			1: {checkpoint: 2, customers: map[string]Customer{"c-2": {1, 3}}, orderIDs: map[string]string{"o-3": "c-2"}},
		}
		return old, cur
	}
	for _, tc := range []struct {
		name   string
		change func(cur map[int32]partState)
		want   []string
	}{
		{name: "equal", change: func(map[int32]partState) {}},
		{
			name:   "total differs",
			change: func(cur map[int32]partState) { cur[1].customers["c-2"] = Customer{1, 4} },
			want:   []string{"E4: customer c-2: local state count=1 total=4, fold count=1 total=3"},
		},
		{
			name:   "order id missing",
			change: func(cur map[int32]partState) { delete(cur[0].orderIDs, "o-2") },
			want:   []string{"E4: order id o-2 of customer c-1 is missing from local state"},
		},
		{
			name:   "order id not applied",
			change: func(cur map[int32]partState) { cur[1].orderIDs["o-9"] = "c-2" },
			want:   []string{"E4: order id o-9 (customer c-2) is in local state but was not applied"},
		},
		{
			name:   "order id of another customer",
			change: func(cur map[int32]partState) { cur[1].orderIDs["o-3"] = "c-1" },
			want: []string{
				"E4: order id o-3 of customer c-1 is in partition 1, the customer in partition 0",
				"E4: order id o-3: local state says customer c-1, fold c-2",
			},
		},
		{
			name: "order id in two partitions",
			change: func(cur map[int32]partState) {
				cur[1].orderIDs["o-1"] = "c-1"
			},
			want: []string{
				"E4: order id o-1 is in the local state of partitions 0 and 1",
				"E4: order id o-1 of customer c-1 is in partition 1, the customer in partition 0",
			},
		},
		{
			// Regression: a partition without any checkpoint ended the
			// check, passing every later partition unchecked.
			name: "a partition never committed to does not end the check",
			change: func(cur map[int32]partState) {
				delete(cur, 1)
				cur[2] = partState{checkpoint: 2, customers: map[string]Customer{"c-2": {1, 4}}, orderIDs: map[string]string{"o-3": "c-2"}}
			},
			want: []string{"E4: customer c-2: local state count=1 total=4, fold count=1 total=3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			old, cur := good()
			tc.change(cur)
			writeState(t, filepath.Join(root, "old"), old)
			writeState(t, filepath.Join(root, "new"), cur)
			got, err := CheckLocalState([]string{filepath.Join(root, "old"), filepath.Join(root, "new")}, 4, expected)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.want, got)
		})
	}
}

func TestCheckLocalStateCapsOrderIDs(t *testing.T) {
	t.Parallel()
	expected := Expected{Customers: map[string]Customer{"c-1": {100, 100}}, OrderIDs: map[string]string{}}
	for i := range 100 {
		expected.OrderIDs[fmt.Sprintf("o-%03d", i)] = "c-1"
	}
	dir := t.TempDir()
	writeState(t, dir, map[int32]partState{0: {checkpoint: 1, customers: expected.Customers}}) // no order ids
	got, err := CheckLocalState([]string{dir}, 1, expected)
	require.NoError(t, err)
	require.Len(t, got, maxOrderIDViolations+1)
	require.Equal(t, "E4: order id o-000 of customer c-1 is missing from local state", got[0])
	require.Equal(t, "E4: ... and 80 more order id differences", got[maxOrderIDViolations])
}

// TestCheckLocalStateAfterReset: a state reset recreates the changelogs, so
// the directory last used before the reset ("stale") has a higher
// changelog checkpoint than the partition's owner since ("owner"). Ranked
// by input checkpoint, the owner's state is the one checked; ranked by
// changelog checkpoint (no InputTopic), the stale copy is.
func TestCheckLocalStateAfterReset(t *testing.T) {
	t.Parallel()
	stale := map[int32]partState{0: {checkpoint: 900, input: 499, customers: map[string]Customer{"c-1": {7, 70}}, orderIDs: map[string]string{"o-1": "c-1"}}}
	owner := map[int32]partState{0: {checkpoint: 30, input: 520, customers: map[string]Customer{"c-1": {1, 5}}, orderIDs: map[string]string{"o-9": "c-1"}}}
	expected := Expected{Customers: map[string]Customer{"c-1": {1, 5}}, OrderIDs: map[string]string{"o-9": "c-1"}}
	for _, tc := range []struct {
		name  string
		opts  LocalStateOptions
		stale map[int32]partState
		want  []string
	}{
		{name: "ranked by input checkpoint", opts: LocalStateOptions{InputTopic: TopicOrders}, stale: stale},
		{
			name: "ranked by changelog checkpoint", stale: stale,
			want: []string{
				"E4: customer c-1: local state count=7 total=70, fold count=1 total=5",
				"E4: order id o-9 of customer c-1 is missing from local state",
				"E4: order id o-1 (customer c-1) is in local state but was not applied",
			},
		},
		{
			// A directory without input checkpoints ranks below any with.
			name: "no input checkpoint ranks lowest", opts: LocalStateOptions{InputTopic: TopicOrders},
			stale: map[int32]partState{0: {checkpoint: 900, customers: map[string]Customer{"c-1": {7, 70}}}},
		},
		{
			name: "equal input checkpoints: the higher changelog checkpoint", opts: LocalStateOptions{InputTopic: TopicOrders},
			stale: map[int32]partState{0: {checkpoint: 900, input: 520, customers: map[string]Customer{"c-1": {1, 5}}, orderIDs: map[string]string{"o-9": "c-1", "o-2": "c-1"}}},
			want:  []string{"E4: order id o-2 (customer c-1) is in local state but was not applied"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeState(t, filepath.Join(root, "stale"), tc.stale)
			writeState(t, filepath.Join(root, "owner"), owner)
			got, err := CheckLocalStateWith([]string{filepath.Join(root, "stale"), filepath.Join(root, "owner")}, 1, expected, tc.opts)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.want, got)
		})
	}
}
