package orders

import (
	"fmt"
	"maps"
	"slices"

	"github.com/exactly-stream/exactly/state"
	"github.com/exactly-stream/exactly/topology"
)

// CheckLocalState checks E4: the committed local state equals the fold of
// the inputs. dirs are the state directories of the order service's
// instances, all stopped. For each partition the directory whose changelog
// checkpoint is highest belongs to its last owner and holds its newest
// state; the union of those partitions must equal expected exactly.
func CheckLocalState(dirs []string, partitions int32, expected map[string]Customer) ([]string, error) {
	dbs := make([]*state.DB, 0, len(dirs))
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	dirs = slices.Compact(slices.Sorted(slices.Values(dirs))) // instances may share a directory over time
	for _, d := range dirs {
		db, err := state.Open(d, state.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening state %s: %w", d, err)
		}
		dbs = append(dbs, db)
	}
	got := make(map[string]Customer)
	for p := range partitions {
		db, err := newestOwner(dbs, p)
		if err != nil {
			return nil, err
		}
		if db == nil {
			continue // never committed to: the partition holds nothing
		}
		all, errf := state.NewView(db, StoreCustomers, p, topology.String(), CustomerSerde()).All()
		for id, c := range all {
			got[id] = c
		}
		if err := errf(); err != nil {
			return nil, fmt.Errorf("reading customers of partition %d: %w", p, err)
		}
	}
	return diffCustomers(expected, got), nil
}

func newestOwner(dbs []*state.DB, p int32) (*state.DB, error) {
	var best *state.DB
	bestOff := int64(-1)
	for _, db := range dbs {
		off, ok, err := db.Checkpoint(StoreCustomers, p)
		if err != nil {
			return nil, fmt.Errorf("reading checkpoint of partition %d: %w", p, err)
		}
		if ok && off > bestOff {
			best, bestOff = db, off
		}
	}
	return best, nil
}

func diffCustomers(want, got map[string]Customer) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w, g := want[id], got[id]
		if w.OrderCount != g.OrderCount || w.TotalCents != g.TotalCents || !slices.Equal(w.OrderIDs, g.OrderIDs) {
			out = append(out, fmt.Sprintf("E4: customer %s: local state count=%d total=%d, fold count=%d total=%d",
				id, g.OrderCount, g.TotalCents, w.OrderCount, w.TotalCents))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("E4: customer %s is in local state but not in the fold", id))
		}
	}
	return out
}
