package bench

import (
	"fmt"
	"strings"
	"time"
)

// The targets of the benchmark issues. They are reported against, never
// asserted: figures depend on the machine, its load and the cluster.
// Pipeline against the ceiling: 0.9 on a real cluster, 0.5 on kfake, whose
// nearly free transport makes its ceiling measure the application's CPU.
const (
	targetCeilingRatio      = 0.9
	targetCeilingRatioKfake = 0.5
	targetOverhead          = 0.15
	targetOverheadAt        = 100 * time.Millisecond
	targetRestoreRate       = 3_000_000
	targetLatencySlack      = 50 * time.Millisecond
	targetRSSBytes          = 300_000_000
	targetRSSCustomers      = 1_000_000
)

// evaluate checks the figures against the targets; a figure not measured
// gives no target line.
func (r *Results) evaluate() []Target {
	var ts []Target
	want := targetCeilingRatio
	if strings.HasPrefix(r.Setup.Cluster, "embedded kfake") {
		want = targetCeilingRatioKfake
	}
	if t, ok := ceilingTarget(r.Throughput, want); ok {
		ts = append(ts, t)
	}
	if t, ok := overheadTarget(r.Throughput); ok {
		ts = append(ts, t)
	}
	if r.Restore != nil {
		got := r.Restore.FromEmpty.RecordsPerSec
		ts = append(ts, Target{
			Name: "restore rate",
			Want: fmt.Sprintf(">= %s records/s", thousands(targetRestoreRate)),
			Got:  fmt.Sprintf("%s records/s from an empty state dir", thousands(got)),
			Met:  got >= targetRestoreRate,
		})
	}
	if l := r.Latency; l != nil {
		limit := l.CommitInterval + targetLatencySlack
		ts = append(ts, Target{
			Name: "p99 latency",
			Want: fmt.Sprintf("<= commit interval + %s = %s", targetLatencySlack, limit),
			Got:  fmt.Sprintf("%s at %s orders/s", round(l.P99), thousands(float64(l.Rate))),
			Met:  l.P99 <= limit,
		})
	}
	if x := r.RSS; x != nil {
		got := mb(x.PeakBytes)
		if x.Customers != targetRSSCustomers {
			got += fmt.Sprintf(" at %d customers only", x.Customers)
		}
		ts = append(ts, Target{
			Name: "peak RSS",
			Want: fmt.Sprintf("< %s at %d customers", mb(targetRSSBytes), targetRSSCustomers),
			Got:  got,
			Met:  x.PeakBytes < targetRSSBytes,
		})
	}
	return ts
}

// ceilingTarget reports the worst pipeline/ceiling ratio over the grid.
func ceilingTarget(cells []Cell, want float64) (Target, bool) {
	worst, at := 0.0, Cell{}
	for _, c := range cells {
		if r := c.CeilingRatio(); r > 0 && (worst == 0 || r < worst) {
			worst, at = r, c
		}
	}
	if worst == 0 {
		return Target{}, false
	}
	return Target{
		Name: "pipeline vs ceiling",
		Want: fmt.Sprintf(">= %.2f at equal transaction size (worst cell)", want),
		Got:  fmt.Sprintf("%.2f at txn %d, commit %s", worst, at.TxnSize, at.CommitInterval),
		Met:  worst >= want,
	}, true
}

// overheadTarget reports the worst exactly-once overhead at the target's
// commit interval.
func overheadTarget(cells []Cell) (Target, bool) {
	worst, at, found := 0.0, Cell{}, false
	for _, c := range cells {
		o, ok := c.Overhead()
		if !ok || c.CommitInterval != targetOverheadAt {
			continue
		}
		if !found || o > worst {
			worst, at, found = o, c, true
		}
	}
	if !found {
		return Target{}, false
	}
	return Target{
		Name: "exactly-once overhead",
		Want: fmt.Sprintf("<= %.0f%% at commit %s (worst transaction size)", 100*targetOverhead, targetOverheadAt),
		Got:  fmt.Sprintf("%.0f%% at txn %d", 100*worst, at.TxnSize),
		Met:  worst <= targetOverhead,
	}, true
}
