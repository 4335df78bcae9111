package orders

import (
	"fmt"
	"maps"
	"slices"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/topology"
)

// Expected is the state the order service must hold after a set of inputs:
// the fold of their valid orders. Verify returns it in Report.Expected;
// CheckLocalState compares it with the local state (E4).
type Expected struct {
	// Customers is the final state of every customer with at least one
	// valid order: StoreCustomers.
	Customers map[string]Customer
	// OrderIDs maps every applied order id to its customer id:
	// StoreOrderIDs.
	OrderIDs map[string]string
}

// maxOrderIDViolations caps the order id differences CheckLocalState lists:
// a lost store partition would otherwise list every order.
const maxOrderIDViolations = 20

// CheckLocalState checks E4: the committed local state equals the fold of
// the inputs. dirs are the state directories of the order service's
// instances, all stopped. For each store partition the directory whose
// changelog checkpoint is highest belongs to its last owner and holds its
// newest state; the union of those partitions must equal expected exactly:
// every customer's count and total in StoreCustomers, and in StoreOrderIDs
// exactly the applied order ids, each with its customer and in the
// partition that holds that customer.
func CheckLocalState(dirs []string, partitions int32, expected Expected) ([]string, error) {
	return CheckLocalStateWith(dirs, partitions, expected, LocalStateOptions{})
}

// LocalStateOptions configures CheckLocalStateWith.
type LocalStateOptions struct {
	// InputTopic, when set, names the order service's input topic, and the
	// newest owner of a store partition is the directory whose input
	// checkpoint of that topic partition is highest (ties go to the highest
	// changelog checkpoint). Needed after a state reset: it recreates the
	// changelogs, whose offsets start again at 0, so a directory last used
	// before the reset may hold a higher changelog checkpoint than the
	// partition's current owner; input offsets never go back. The default
	// value is empty: ranked by changelog checkpoint.
	InputTopic string
}

// CheckLocalStateWith is CheckLocalState with options.
func CheckLocalStateWith(dirs []string, partitions int32, expected Expected, opts LocalStateOptions) ([]string, error) {
	dbs := make([]*exactlytest.StateDir, 0, len(dirs))
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	dirs = slices.Compact(slices.Sorted(slices.Values(dirs))) // instances may share a directory over time
	for _, d := range dirs {
		db, err := exactlytest.OpenStateDir(d)
		if err != nil {
			return nil, err
		}
		dbs = append(dbs, db)
	}
	got := newLocalState(opts.InputTopic)
	for p := range partitions {
		if err := got.read(dbs, p); err != nil {
			return nil, err
		}
	}
	return slices.Concat(
		diffCustomers(expected.Customers, got.customers),
		capped(slices.Concat(got.misplaced(), diffOrderIDs(expected.OrderIDs, got.orderIDs)), maxOrderIDViolations),
	), nil
}

// localState is the union of the newest state of every partition, with the
// partition each key was found in.
type localState struct {
	customers    map[string]Customer
	customerPart map[string]int32
	orderIDs     map[string]string // order id -> customer id
	orderPart    map[string]int32
	twice        []string // order ids found in two partitions
	inputTopic   string   // LocalStateOptions.InputTopic
}

func newLocalState(inputTopic string) *localState {
	return &localState{
		inputTopic: inputTopic,
		customers:  make(map[string]Customer), customerPart: make(map[string]int32),
		orderIDs: make(map[string]string), orderPart: make(map[string]int32),
	}
}

// read adds partition p of both stores, each from its newest owner. A
// store partition no directory has a checkpoint for was never committed
// to: it holds nothing.
func (s *localState) read(dbs []*exactlytest.StateDir, p int32) error {
	if err := s.readCustomers(dbs, p); err != nil {
		return err
	}
	return s.readOrderIDs(dbs, p)
}

func (s *localState) readCustomers(dbs []*exactlytest.StateDir, p int32) error {
	db, err := newestOwner(dbs, StoreCustomers, s.inputTopic, p)
	if err != nil || db == nil {
		return err
	}
	all, err := exactlytest.StoreAs(db, StoreCustomers, []int32{p}, topology.String(), CustomerSerde())
	if err != nil {
		return fmt.Errorf("reading customers of partition %d: %w", p, err)
	}
	for id, c := range all[p] {
		s.customers[id], s.customerPart[id] = c, p
	}
	return nil
}

func (s *localState) readOrderIDs(dbs []*exactlytest.StateDir, p int32) error {
	db, err := newestOwner(dbs, StoreOrderIDs, s.inputTopic, p)
	if err != nil || db == nil {
		return err
	}
	all, err := exactlytest.StoreAs(db, StoreOrderIDs, []int32{p}, topology.String(), topology.String())
	if err != nil {
		return fmt.Errorf("reading order ids of partition %d: %w", p, err)
	}
	for _, id := range slices.Sorted(maps.Keys(all[p])) {
		customer := all[p][id]
		if q, ok := s.orderPart[id]; ok {
			s.twice = append(s.twice, fmt.Sprintf("E4: order id %s is in the local state of partitions %d and %d", id, q, p))
		}
		s.orderIDs[id], s.orderPart[id] = customer, p
	}
	return nil
}

// misplaced reports order ids found in two partitions, or in another
// partition than their customer.
func (s *localState) misplaced() []string {
	out := slices.Clone(s.twice)
	for _, id := range slices.Sorted(maps.Keys(s.orderIDs)) {
		customer := s.orderIDs[id]
		if cp, ok := s.customerPart[customer]; ok && cp != s.orderPart[id] {
			out = append(out, fmt.Sprintf("E4: order id %s of customer %s is in partition %d, the customer in partition %d",
				id, customer, s.orderPart[id], cp))
		}
	}
	return out
}

// newestOwner returns the directory whose checkpoint of store partition p
// is highest, nil if none has one. With inputTopic, the input checkpoint of
// inputTopic partition p ranks first (see LocalStateOptions).
func newestOwner(dbs []*exactlytest.StateDir, store, inputTopic string, p int32) (*exactlytest.StateDir, error) {
	var best *exactlytest.StateDir
	bestIn, bestOff := int64(-1), int64(-1)
	for _, db := range dbs {
		off, ok, err := db.Checkpoint(store, p)
		if err != nil {
			return nil, fmt.Errorf("reading checkpoint of %s partition %d: %w", store, p, err)
		}
		if !ok {
			continue
		}
		in := int64(-1)
		if inputTopic != "" {
			at, found, err := db.InputCheckpoint(store, inputTopic, p)
			if err != nil {
				return nil, fmt.Errorf("reading input checkpoint of %s partition %d: %w", store, p, err)
			}
			if found {
				in = at
			}
		}
		if in > bestIn || in == bestIn && off > bestOff {
			best, bestIn, bestOff = db, in, off
		}
	}
	return best, nil
}

func diffCustomers(want, got map[string]Customer) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w, g := want[id], got[id]
		if w != g {
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

func diffOrderIDs(want, got map[string]string) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("E4: order id %s of customer %s is missing from local state", id, want[id]))
		case g != want[id]:
			out = append(out, fmt.Sprintf("E4: order id %s: local state says customer %s, fold %s", id, g, want[id]))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("E4: order id %s (customer %s) is in local state but was not applied", id, got[id]))
		}
	}
	return out
}

// capped returns the first n of vs and, if there were more, a line counting
// the rest.
func capped(vs []string, n int) []string {
	if len(vs) <= n {
		return vs
	}
	return append(vs[:n:n], fmt.Sprintf("E4: ... and %d more order id differences", len(vs)-n))
}
