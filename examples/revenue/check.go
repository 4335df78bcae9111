package revenue

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// maxViolations bounds how many violations Check describes.
const maxViolations = 20

// Minute is a product's tumbling minute: what a Revenue record totals.
type Minute struct {
	Product string
	Start   time.Time
}

func (m Minute) String() string {
	return m.Product + "@" + m.Start.UTC().Format(time.RFC3339)
}

// MinuteOf returns the minute s counts in.
func MinuteOf(s Sale) Minute { return Minute{s.Product, s.Time.Truncate(Window).UTC()} }

// Check checks a run's committed output against the sales it was given:
// sales are the values produced to the sales topic, totals the committed
// revenue records and dead the committed dead letters' values (sales,
// from either the sales or the repartition topic). It returns an error
// describing every violation (up to 20) of the invariant: every valid sale
// is in exactly one emitted total or dead-lettered once, every invalid one
// is dead-lettered once, no (product, minute) is emitted twice, and each
// total is the sum of its minute's sales that were not dead-lettered.
// Minutes starting at or after openFrom may still be open: their sales
// may be in no total yet (a zero openFrom allows none).
//
// Sales are matched by value: two equal sales count the same wherever
// they go, so which of them a dead letter stands for does not matter.
func Check(sales, dead []Sale, totals []Revenue, openFrom time.Time) error {
	var errs []error
	fail := func(format string, args ...any) {
		if len(errs) < maxViolations {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	left := make(map[Sale]int) // produced sales not dead-lettered
	for _, s := range sales {
		left[norm(s)]++
	}
	for _, s := range dead {
		if left[norm(s)] == 0 {
			fail("dead letter %+v: not produced, or dead-lettered twice", s)
			continue
		}
		left[norm(s)]--
	}
	want := make(map[Minute]Bucket) // the sums of the counted sales
	for s, n := range left {
		if n == 0 {
			continue
		}
		if s.Validate() != nil {
			fail("invalid sale %+v (%d): not dead-lettered", s, n)
			continue
		}
		b := want[MinuteOf(s)]
		b.Cents += s.AmountCents * int64(n)
		b.Sales += int64(n)
		want[MinuteOf(s)] = b
	}
	emitted := make(map[Minute]bool)
	for _, r := range totals {
		m := Minute{r.Product, r.Minute.UTC()}
		if emitted[m] {
			fail("%s: emitted twice", m)
			continue
		}
		emitted[m] = true
		if w := want[m]; w.Cents != r.RevenueCents || w.Sales != r.Sales {
			fail("%s: emitted %d cents of %d sales, its counted sales sum to %d cents of %d (a sale counted twice, or lost)",
				m, r.RevenueCents, r.Sales, w.Cents, w.Sales)
		}
	}
	for _, m := range slices.SortedFunc(maps.Keys(want), compareMinutes) {
		if !emitted[m] && (openFrom.IsZero() || m.Start.Before(openFrom)) {
			fail("%s: %d sales (%d cents) in no emitted total and not dead-lettered: lost", m, want[m].Sales, want[m].Cents)
		}
	}
	return errors.Join(errs...)
}

// norm makes equal sales equal map keys: a decoded time has no monotonic
// reading and its own location.
func norm(s Sale) Sale {
	s.Time = s.Time.UTC().Round(0)
	return s
}

func compareMinutes(a, b Minute) int {
	return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Product, b.Product))
}
