package orders

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Checks, the prefixes of Report.Violations and the keys of Report.Counts.
const (
	CheckE1       = "E1"   // valid orders have exactly one event, nothing else has one
	CheckE2       = "E2"   // per-customer counts 1..n, events equal the fold
	CheckE3       = "E3"   // malformed orders dead-lettered exactly once, nothing else
	CheckE5       = "E5"   // no transaction left open
	CheckPayments = "PAY"  // one payment per event, attempt 1, amounts equal
	CheckRead     = "READ" // the data allows a complete check (no deleted records, keys co-partitioned)
)

// Report is the result of Verify.
type Report struct {
	Inputs     int // records read from the orders topic
	Valid      int // valid orders applied by the fold
	Malformed  int // malformed input records
	Duplicates int // valid orders whose id was already applied for the customer
	Events     int // records read from the events topic
	DLQ        int // records read from the dead-letter topic
	Payments   int // records read from the payments topic (if checked)
	// PaymentsDLQ counts records read from the payment stage's dead-letter
	// topic (if checked); each is a violation.
	PaymentsDLQ int

	// Resets is the number of state resets the checks took into account
	// (VerifyOptions.Resets): E1, E2 and Expected are per reset epoch.
	Resets int

	// PaymentsChecked says whether the payment stage was checked.
	PaymentsChecked bool

	// Expected is the fold of the orders: the final state of every
	// customer with at least one valid order and the customer of every
	// applied order id. E4 holds when the order service's local state
	// equals it (CheckLocalState).
	Expected Expected

	// Violations describes the first violations found, each prefixed with
	// its check (CheckE1, ...). Omitted counts those left off the list.
	Violations []string
	Omitted    int

	// Counts counts all violations per check, omitted ones included.
	Counts map[string]int

	max int
}

func newReport(maxViolations int, payments bool) *Report {
	return &Report{PaymentsChecked: payments, Counts: make(map[string]int), max: maxViolations}
}

func (r *Report) addf(check, format string, args ...any) {
	r.Counts[check]++
	if len(r.Violations) >= r.max {
		r.Omitted++
		return
	}
	r.Violations = append(r.Violations, check+" "+fmt.Sprintf(format, args...))
}

// OK reports whether no check was violated.
func (r *Report) OK() bool { return len(r.Violations) == 0 && r.Omitted == 0 }

// Total returns the number of violations, omitted ones included.
func (r *Report) Total() int { return len(r.Violations) + r.Omitted }

// String summarizes the report: verdict, counts, and the violations listed.
func (r *Report) String() string {
	var sb strings.Builder
	if r.OK() {
		sb.WriteString("verify: OK\n")
	} else {
		fmt.Fprintf(&sb, "verify: FAILED, %d violations (%s)\n", r.Total(), r.countsString())
	}
	fmt.Fprintf(&sb, "  inputs %d: valid %d, malformed %d, duplicates %d\n", r.Inputs, r.Valid, r.Malformed, r.Duplicates)
	fmt.Fprintf(&sb, "  events %d, dead-lettered %d", r.Events, r.DLQ)
	if r.PaymentsChecked {
		fmt.Fprintf(&sb, ", payments %d, payments dead-lettered %d\n", r.Payments, r.PaymentsDLQ)
	} else {
		sb.WriteString(", payments not checked\n")
	}
	fmt.Fprintf(&sb, "  customers %d\n", len(r.Expected.Customers))
	if r.Resets > 0 {
		fmt.Fprintf(&sb, "  state resets %d: E1 and E2 per reset epoch, the expected state is the fold from the last reset's offsets on\n", r.Resets)
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&sb, "  %s\n", v)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(&sb, "  ... and %d more\n", r.Omitted)
	}
	return sb.String()
}

func (r *Report) countsString() string {
	parts := make([]string, 0, len(r.Counts))
	for _, c := range slices.Sorted(maps.Keys(r.Counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", c, r.Counts[c]))
	}
	return strings.Join(parts, " ")
}
