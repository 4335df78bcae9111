package chaos

import (
	"fmt"
	"strings"
	"time"
)

// mirrorString is Report.String for the mirror mode.
func (r *Report) mirrorString() string {
	var b strings.Builder
	m := r.Mirror
	fmt.Fprintf(&b, "chaos (mirror %s): seed %d, failures for %s on %s, %d records/s into %s\n", m.Name, r.Seed, r.Duration, r.Cluster, r.Rate, strings.Join(m.Topics, ","))
	v := m.Verdict
	if v != nil {
		fmt.Fprintf(&b, "  source: %d transactions (%d aborted): %d records committed, %d aborted\n", m.Transactions, m.AbortedTransactions, v.Committed, v.Aborted)
	} else {
		fmt.Fprintf(&b, "  source: %d transactions (%d aborted)\n", m.Transactions, m.AbortedTransactions)
	}
	fmt.Fprintf(&b, "  instances: %d processes started; %d SIGKILLed, %d stopped and restarted cleanly, %d frozen past the session timeout, %d scale-ups, %d scale-downs\n",
		r.Started, r.Killed, r.Stopped, r.Paused, r.ScaledUp, r.ScaledDown)
	var idle time.Duration
	for _, ph := range r.Phases {
		idle += ph.Took
	}
	fmt.Fprintf(&b, "  idle phases: %d (%s without writes)\n", len(r.Phases), idle.Round(time.Second))
	if r.Generations >= 0 {
		fmt.Fprintf(&b, "  rebalances: %d (source group generations)\n", r.Generations)
	} else {
		b.WriteString("  rebalances: not observable on this cluster\n")
	}
	fmt.Fprintf(&b, "  target transactions aborted: %d%s\n", sum(r.Aborts), byKind(r.Aborts))
	if r.Faults != nil {
		fmt.Fprintf(&b, "  broker faults injected: %d%s\n", sum(r.Faults), byKind(r.Faults))
	}
	if r.Evicted > 0 {
		fmt.Fprintf(&b, "  kfake workaround: %d stale members of dead instances evicted\n", r.Evicted)
	}
	fmt.Fprintf(&b, "  instances that stopped on an error by design, restarted: %d\n", len(m.Exits))
	for _, e := range m.Exits {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	if len(r.UnexpectedExits) == 0 {
		b.WriteString("  unexpected instance exits: none\n")
	}
	for _, e := range r.UnexpectedExits {
		fmt.Fprintf(&b, "  unexpected instance exit: %s\n", e)
	}
	if len(r.RaceExitHangs) > 0 {
		fmt.Fprintf(&b, "  exits hung in the race detector's runtime after a clean shutdown (not counted): %s\n", strings.Join(r.RaceExitHangs, ", "))
	}
	if len(r.SlowStops) > 0 {
		fmt.Fprintf(&b, "  slow clean stops (no exit within the stop timeout of SIGTERM, killed): %s\n", strings.Join(r.SlowStops, ", "))
	}
	if v == nil {
		b.WriteString("verify: not run\n")
	} else {
		b.WriteString(v.String())
	}
	if r.OK() {
		b.WriteString("PASS: mirrored exactly once under chaos\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d violations (replay the choices with --seed %d)\n", r.Violations(), r.Seed)
	}
	return b.String()
}

func (v *MirrorVerdict) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verify: source %d committed records (producer: %d), target %d\n", v.SourceRecords, v.Committed, v.TargetRecords)
	for _, s := range v.Source {
		fmt.Fprintf(&b, "  source differs from the producer's ledger: %s\n", s)
	}
	fmt.Fprintf(&b, "  source vs target (mirror.Verify, whole topics): missing %d, extra %d, mismatch %d\n", v.Missing, v.Extra, v.Mismatch)
	for _, d := range v.Details {
		fmt.Fprintf(&b, "    %s\n", d)
	}
	fmt.Fprintf(&b, "  duplicates on the target: %d; aborted source records on the target: %d\n", v.Duplicates, v.AbortedCopies)
	for _, d := range v.DuplicateDetails {
		fmt.Fprintf(&b, "    %s\n", d)
	}
	if len(v.Hanging) == 0 {
		b.WriteString("  no transaction left open on the target\n")
	}
	for _, h := range v.Hanging {
		fmt.Fprintf(&b, "  transaction left open on the target: %s\n", h)
	}
	return b.String()
}
