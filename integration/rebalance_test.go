package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPartitionReturnedToIdleOwnerIsRestored is a regression test. An
// instance that sat idle through two rebalances got a partition back
// without restoring it, and emitted a count it had emitted before. kgo's
// GroupTransactSession (v1.22.2) calls the user's OnPartitionsRevoked only
// while its own revoked flag is clear, and only End clears that flag: an
// idle instance calls no End, so after its first revoke it hears no other.
// The processor kept the second revoked partition marked ready, skipped its
// restore when the partition came back, and processed on the state it had
// before another instance moved that partition on.
//
// Six partitions, one record each, all on A; B joins (A keeps three), C
// joins (one of A's moves to C) while the input is quiet. C counts one more
// record of the moved partition's key; B and C leave; A gets everything
// back, and one more record of that key must count 3, not 2 again.
func TestPartitionReturnedToIdleOwnerIsRestored(t *testing.T) {
	e := newEnv(t)
	app := newCounterApp(e, 6)
	keys := make([]string, app.parts)
	want := make(map[string]int)
	for p := range app.parts {
		keys[p] = app.keyOn(p, 0)
		want[keys[p]] = 1
	}
	a := app.start("a", "a")
	waitSpread(t, time.Minute, map[*inst]int{a: 6})
	app.produce(keys...)
	app.waitOutputs(nil, 6)

	// No input from here until C owns its partitions: A stays idle
	// through both rebalances.
	b := app.start("b", "b")
	first := waitSpread(t, time.Minute, map[*inst]int{a: 3, b: 3})
	c := app.start("c", "c")
	second := waitSpread(t, time.Minute, map[*inst]int{b: 2, c: 2})
	var moved []int32
	for _, p := range second[c] {
		if slices.Contains(first[a], p) {
			moved = append(moved, p)
		}
	}
	require.Len(t, moved, 1, "C took one partition from A (A had %v, C has %v)", first[a], second[c])
	pm := moved[0]
	keep := slices.DeleteFunc(slices.Clone(first[a]), func(p int32) bool { return p == pm })
	// A's own view must follow: kgo stopped fetching the partition, so an
	// instance that still claims it serves stale lookups and, when the
	// partition returns, skips its restore. Non-fatal, so that the test
	// goes on to show what that costs.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(a.p.Assigned().Partitions(), keep) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := a.p.Assigned().Partitions(); !slices.Equal(got, keep) {
		t.Errorf("A still claims partition %d after C took it: Assigned() = %v, want %v", pm, got, keep)
	}

	app.produce(keys[pm])
	want[keys[pm]]++
	app.waitOutputs(nil, 7)
	c.close(t)
	b.close(t)
	seven := app.fold(nil)
	app.requireLocal(c, second[c], seven, "the fold of the input")
	app.requireLocal(b, second[b], seven, "the fold of the input")
	waitSpread(t, time.Minute, map[*inst]int{a: 6})

	app.produce(keys[pm])
	want[keys[pm]]++
	got := app.waitOutputs(nil, 8)
	assert.Empty(t, countRunViolations(got, want), "committed outputs per key must count 1..n once each (partition %d moved A -> C -> A)", pm)
	a.close(t)
	app.requireLocal(a, allParts(app.parts), app.fold(nil), "the fold of the input")
}

func allParts(n int32) []int32 {
	out := make([]int32, n)
	for p := range n {
		out[p] = p
	}
	return out
}
