package chaos

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/exactly-stream/exactly/examples/orders"
)

// Report is what a chaos run did and what the checks found.
type Report struct {
	Mode     string // Config.Mode
	Seed     int64
	Duration time.Duration // of the failures; the run takes longer
	Cluster  string        // "embedded kfake" or the brokers
	Rate     int

	Produced orders.ProduceStats

	Started       int // instance processes started
	Killed        int // SIGKILLed
	WipedRestarts int // of the killed, restarted on an empty state directory
	Stopped       int // stopped cleanly (SIGTERM) and restarted
	Paused        int // frozen past the session timeout, then thawed
	ScaledUp      int
	ScaledDown    int
	BrokerKills   int // real cluster only

	// Phases are the idle phases and operator resets, in order.
	Phases []Phase

	// Evicted counts members of dead instances that kfake kept past their
	// session timeout and Run removed (see run.evictLater).
	Evicted int

	// Generations is the group's highest generation seen (kfake only): the
	// number of rebalances. -1 when unknown.
	Generations int32

	Aborts          map[string]int // transactions aborted, by cause
	SessionRestarts int            // transaction sessions recreated after an End error
	Restores        int            // store partitions restored
	RestoredRecords int64          // changelog records they applied

	Faults map[string]int // broker faults injected (kfake), by kind

	// UnexpectedExits are instances that stopped on their own: each
	// counts as a violation (the pipeline must ride out every failure
	// injected here).
	UnexpectedExits []string

	// SlowStops are instances that did not exit within StopTimeout of
	// SIGTERM and were killed (SIGQUIT: a goroutine dump in their log).
	// Safe for the data (a kill is a crash), but a clean stop is bounded
	// (the transaction timeout, then at most 10 s to leave the group), so
	// each counts as a violation: a hang to find.
	SlowStops []string
	// RaceExitHangs are instances that shut down after SIGTERM but whose
	// exit then hung inside the race detector's runtime (racefini, seen
	// in their goroutine dump): not the instance's code, not violations.
	RaceExitHangs []string

	Verify     *orders.Report // E1-E3, E5
	LocalState []string       // E4 violations

	// Mirror is the mirror mode's part; nil in the pipeline mode.
	Mirror *MirrorReport

	// Revenue is the revenue mode's part; nil in the other modes.
	Revenue *RevenueReport

	// Enrich is the enrich mode's part; nil in the other modes.
	Enrich *EnrichReport
}

// MirrorReport is what a mirror soak did and found.
type MirrorReport struct {
	Name   string   // the mirror's name
	Topics []string // the source topics

	// Transactions and AbortedTransactions are the source producer's.
	Transactions, AbortedTransactions int

	// Exits are instances that stopped on their own with an error (exit
	// status 1), as the mirror does by design when a commit's outcome is
	// unknown or it is fenced; each was restarted, as a supervisor would.
	// Not violations: the verdict says whether they cost anything.
	Exits []string

	// Verdict is what the checks found; nil when they did not run.
	Verdict *MirrorVerdict
}

// Violations counts everything that went wrong.
func (r *Report) Violations() int {
	n := len(r.UnexpectedExits) + len(r.SlowStops) + len(r.LocalState)
	if r.Mirror != nil {
		if r.Mirror.Verdict == nil {
			return n + 1
		}
		return n + r.Mirror.Verdict.Violations()
	}
	if r.Revenue != nil {
		if !r.Revenue.Checked {
			return n + 1
		}
		return n + len(r.Revenue.Violations)
	}
	if r.Enrich != nil {
		if !r.Enrich.Checked {
			return n + 1
		}
		return n + len(r.Enrich.Violations)
	}
	if r.Verify == nil {
		return n + 1
	}
	return n + r.Verify.Total()
}

// OK reports whether the run found no violation.
func (r *Report) OK() bool { return r.Violations() == 0 }

func (r *Report) String() string {
	if r.Mirror != nil {
		return r.mirrorString()
	}
	if r.Revenue != nil {
		return r.revenueString()
	}
	if r.Enrich != nil {
		return r.enrichString()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: seed %d, failures for %s on %s, %d orders/s\n", r.Seed, r.Duration, r.Cluster, r.Rate)
	p := r.Produced
	fmt.Fprintf(&b, "  inputs %d: valid %d, malformed %d, duplicates %d\n", p.Produced, p.Valid, p.Malformed, p.Duplicates)
	fmt.Fprintf(&b, "  instances: %d processes started; %d SIGKILLed (%d restarted on a wiped state dir), %d stopped and restarted cleanly, %d frozen past the session timeout, %d scale-ups, %d scale-downs\n",
		r.Started, r.Killed, r.WipedRestarts, r.Stopped, r.Paused, r.ScaledUp, r.ScaledDown)
	idle := r.Idle()
	fmt.Fprintf(&b, "  idle phases: %d (%d scale-ups, %d scale-downs while production stopped; %d orders to the newcomers); operator resets: %d\n",
		idle.Phases, idle.ScaleUps, idle.ScaleDowns, idle.Orders, r.Resets())
	for _, ph := range r.Phases {
		fmt.Fprintf(&b, "    %s\n", ph)
	}
	if r.Generations >= 0 {
		fmt.Fprintf(&b, "  rebalances: %d (group generations)\n", r.Generations)
	} else {
		b.WriteString("  rebalances: not observable on this cluster\n")
	}
	fmt.Fprintf(&b, "  transactions aborted: %d%s\n", sum(r.Aborts), byKind(r.Aborts))
	fmt.Fprintf(&b, "  sessions recreated: %d; restores: %d store partitions, %d changelog records\n", r.SessionRestarts, r.Restores, r.RestoredRecords)
	if r.Faults != nil {
		fmt.Fprintf(&b, "  broker faults injected: %d%s\n", sum(r.Faults), byKind(r.Faults))
	}
	fmt.Fprintf(&b, "  brokers killed: %d\n", r.BrokerKills)
	if r.Evicted > 0 {
		fmt.Fprintf(&b, "  kfake workaround: %d stale members of dead instances evicted\n", r.Evicted)
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
	if r.Verify != nil {
		b.WriteString(strings.TrimRight(r.Verify.String(), "\n") + "\n")
	} else {
		b.WriteString("verify: not run\n")
	}
	for _, v := range r.LocalState {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	if r.Verify != nil && len(r.LocalState) == 0 {
		fmt.Fprintf(&b, "E4 local state of %d customers equals the fold of the inputs\n", len(r.Verify.Expected.Customers))
	}
	if r.OK() {
		b.WriteString("PASS: exactly once under chaos\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d violations (replay the choices with --seed %d)\n", r.Violations(), r.Seed)
	}
	return b.String()
}

// IdleTotals totals the idle phases of a run.
type IdleTotals struct {
	Phases, ScaleUps, ScaleDowns int
	Orders                       int // produced into the newcomers' partitions
}

// Idle returns the totals of the idle phases.
func (r *Report) Idle() IdleTotals {
	var t IdleTotals
	for _, ph := range r.Phases {
		if ph.Kind == PhaseIdle {
			t.Phases, t.ScaleUps, t.ScaleDowns, t.Orders = t.Phases+1, t.ScaleUps+ph.ScaleUps, t.ScaleDowns+ph.ScaleDowns, t.Orders+ph.Trickle
		}
	}
	return t
}

// Resets returns the number of operator resets.
func (r *Report) Resets() int {
	n := 0
	for _, ph := range r.Phases {
		if ph.Kind == PhaseReset {
			n++
		}
	}
	return n
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byKind lists counts, largest first: " (a 3, b 1)".
func byKind(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// stats is the part of the report written while the run goes on, from the
// instances' log readers as well as the loop.
type stats struct {
	mu sync.Mutex
	r  Report
}

func (s *stats) add(fn func(*Report)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.r)
}

// textCause finds the cause in a text log line (the mirror's).
var textCause = regexp.MustCompile(`\bcause="((?:[^"\\]|\\.)*)"|\bcause=(\S+)`)

// textLine counts what one text log line of an instance (the mirror logs
// text) says: its aborted transactions.
func (s *stats) textLine(line string) {
	if !strings.Contains(line, `msg="target transaction aborted"`) {
		return
	}
	var cause any
	if m := textCause.FindStringSubmatch(line); m != nil {
		cause = m[1] + m[2]
	}
	s.add(func(r *Report) { r.Aborts[shortCause(cause)]++ })
}

// logLine counts what one JSON log line of an instance says.
func (s *stats) logLine(m map[string]any) {
	switch m["msg"] {
	case "transaction aborted":
		s.add(func(r *Report) { r.Aborts[shortCause(m["cause"])]++ })
	case "transaction session failed; recreating it":
		s.add(func(r *Report) { r.SessionRestarts++ })
	case "restored store partition":
		n, _ := m["records"].(float64)
		s.add(func(r *Report) { r.Restores++; r.RestoredRecords += int64(n) })
	}
}
