package enrich

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxViolations bounds how many violations Check describes.
const maxViolations = 20

// Version is one version of a customer's profile, as produced to the
// customers topic with timestamp Time.
type Version struct {
	Customer string
	Profile  string
	Time     time.Time
}

// Placed is an order as produced to the orders topic: key Customer,
// timestamp Time.
type Placed struct {
	Customer string
	Order    Order
	Time     time.Time
}

// Output is an output record: its key and value.
type Output struct {
	Customer string
	Enriched
}

// Expected returns, per order id, the profile the order must be enriched
// with: its customer's last version at or before the order's time, or
// NoProfile. A version with the same timestamp as an order may be
// processed before or after it (the topics' order between equal
// timestamps is not defined), so data meant for Check should have none:
// Generate makes none.
func Expected(versions []Version, orders []Placed) map[string]string {
	history := make(map[string][]Version)
	for _, v := range versions {
		history[v.Customer] = append(history[v.Customer], v)
	}
	for _, h := range history {
		// Stable: of two versions at the same time, the later produced wins.
		slices.SortStableFunc(h, func(a, b Version) int { return a.Time.Compare(b.Time) })
	}
	want := make(map[string]string, len(orders))
	for _, o := range orders {
		p := NoProfile
		for _, v := range history[o.Customer] {
			if v.Time.After(o.Time) {
				break
			}
			p = v.Profile
		}
		want[o.Order.ID] = p
	}
	return want
}

// Check checks a run's committed output against the records it was given
// (order ids must be unique): every order is in the output exactly once,
// under its customer's key, unchanged, with the profile Expected gives
// it. It returns an error describing the violations (up to 20), with the
// counts of wrong profiles, duplicates and missing orders.
func Check(versions []Version, orders []Placed, out []Output) error {
	want := Expected(versions, orders)
	byID := make(map[string]Placed, len(orders))
	for _, o := range orders {
		byID[o.Order.ID] = o
	}
	var errs []error
	fail := func(format string, args ...any) {
		if len(errs) < maxViolations {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	seen := make(map[string]bool, len(out))
	var wrong, dups, unknown int
	for _, r := range out {
		o, ok := byID[r.ID]
		switch {
		case !ok:
			unknown++
			fail("order %q: in the output, never produced", r.ID)
			continue
		case seen[r.ID]:
			dups++
			fail("order %q: enriched twice", r.ID)
			continue
		}
		seen[r.ID] = true
		if r.Customer != o.Customer || r.Order != o.Order {
			fail("order %q: written as %+v under key %q, produced as %+v under key %q", r.ID, r.Order, r.Customer, o.Order, o.Customer)
		}
		if r.Profile != want[r.ID] {
			wrong++
			fail("order %q of %s at %s: profile %q, want %q (the profile as of its time)",
				r.ID, o.Customer, o.Time.UTC().Format(time.RFC3339Nano), r.Profile, want[r.ID])
		}
	}
	var missing int
	for _, o := range orders {
		if !seen[o.Order.ID] {
			missing++
			fail("order %q: not in the output (lost)", o.Order.ID)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	summary := fmt.Errorf("%d of %d orders with the wrong profile, %d enriched twice, %d missing, %d unknown",
		wrong, len(orders), dups, missing, unknown)
	return errors.Join(append([]error{summary}, errs...)...)
}

// Generate returns a cold start's data: versions profiles of each of
// customers customers (version v of customer c is "c<c>-v<v>", at base
// plus v+1 minutes plus c seconds, so customers must be under 60) and
// orders orders of random customers at random times over the versions'
// span plus one minute (the first minute before any profile), never on a
// whole second, so no order has a version's timestamp. Both are in
// timestamp order, as services would write them.
func Generate(seed uint64, base time.Time, customers, versions, orders int) ([]Version, []Placed) {
	rng := rand.New(rand.NewPCG(seed, 0xe1))
	var vs []Version
	for v := range versions {
		for c := range customers {
			vs = append(vs, Version{
				Customer: customer(c),
				Profile:  customer(c) + "-v" + strconv.Itoa(v),
				Time:     base.Add(time.Duration(v+1)*time.Minute + time.Duration(c)*time.Second),
			})
		}
	}
	span := int64(versions+1) * int64(time.Minute/time.Millisecond)
	placed := make([]Placed, orders)
	for i := range placed {
		ms := rng.Int64N(span)
		if ms%1000 == 0 {
			ms++
		}
		placed[i] = Placed{
			Customer: customer(rng.IntN(customers)),
			Order:    Order{ID: "o" + strconv.Itoa(i), AmountCents: 1 + rng.Int64N(100000)},
			Time:     base.Add(time.Duration(ms) * time.Millisecond),
		}
	}
	slices.SortStableFunc(placed, func(a, b Placed) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	return vs, placed
}

func customer(c int) string { return "c" + strconv.Itoa(c) }

// Records returns the records to produce for versions and orders, to the
// topics with prefix prefix, with their times as timestamps. Produced
// with the default partitioner, a customer's records are in the same
// partition of both topics.
func Records(prefix string, versions []Version, orders []Placed) (customers, ords []*kgo.Record) {
	for _, v := range versions {
		customers = append(customers, &kgo.Record{Topic: prefix + TopicCustomers, Key: []byte(v.Customer), Value: []byte(v.Profile), Timestamp: v.Time})
	}
	for _, o := range orders {
		b, err := json.Marshal(o.Order)
		if err != nil {
			panic(err) // an Order always marshals
		}
		ords = append(ords, &kgo.Record{Topic: prefix + TopicOrders, Key: []byte(o.Customer), Value: b, Timestamp: o.Time})
	}
	return customers, ords
}

// Decode decodes output records (of the topic orders-enriched).
func Decode(recs []*kgo.Record) ([]Output, error) {
	out := make([]Output, 0, len(recs))
	for _, r := range recs {
		var e Enriched
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return nil, fmt.Errorf("output record at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, Output{Customer: string(r.Key), Enriched: e})
	}
	return out, nil
}
