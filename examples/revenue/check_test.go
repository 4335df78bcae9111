package revenue_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/revenue"
	"github.com/exactly-stream/exactly/topology"
)

// TestCheckFindsViolations plants each violation Check must find in an
// otherwise correct output.
func TestCheckFindsViolations(t *testing.T) {
	apple := func(cents int64, at time.Duration) revenue.Sale {
		return revenue.Sale{Product: "apple", AmountCents: cents, Time: t0.Add(at)}
	}
	sales := []revenue.Sale{apple(1, 0), apple(2, time.Second), apple(4, time.Minute), {Product: "apple", AmountCents: -1, Time: t0}}
	dead := []revenue.Sale{sales[3], sales[2]} // the invalid one, and minute 1's: late
	totals := []revenue.Revenue{rev("apple", 0, 3, 2)}
	require.NoError(t, revenue.Check(sales, dead, totals, time.Time{}))

	for _, tc := range []struct {
		name   string
		dead   []revenue.Sale
		totals []revenue.Revenue
		open   time.Time
		want   string
	}{
		{"emitted twice", dead, append(totals, rev("apple", 0, 3, 2)), time.Time{}, "emitted twice"},
		{"counted twice", dead, []revenue.Revenue{rev("apple", 0, 4, 3)}, time.Time{}, "counted twice, or lost"},
		{"sale lost from a total", dead, []revenue.Revenue{rev("apple", 0, 1, 1)}, time.Time{}, "counted twice, or lost"},
		{"minute lost", dead[:1], totals, time.Time{}, "apple@2024-01-01T00:01:00Z: 1 sales (4 cents) in no emitted total"},
		{"invalid not dead-lettered", dead[1:], totals, time.Time{}, "not dead-lettered"},
		{"dead letter twice", append(dead, sales[0]), totals, time.Time{}, "emitted 3 cents of 2 sales, its counted sales sum to 2 cents of 1"},
		{"dead letter of nothing", append(dead, apple(9, 0)), totals, time.Time{}, "not produced, or dead-lettered twice"},
		{"total of no sales", dead, append(totals, rev("pear", 0, 1, 1)), time.Time{}, "pear@2024-01-01T00:00:00Z: emitted 1 cents of 1 sales, its counted sales sum to 0 cents of 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := revenue.Check(sales, tc.dead, tc.totals, tc.open)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A minute still open may be in no total.
	require.NoError(t, revenue.Check(sales, dead[:1], totals, t0.Add(time.Minute)))
}

// TestRandomSalesPassCheck pipes random sales from random tills, some
// invalid, some late, through the driver with the wall clock moving, and
// checks the output.
func TestRandomSalesPassCheck(t *testing.T) {
	h := newHarness(t, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	var sales []revenue.Sale
	at := time.Duration(0)
	for range 500 {
		at += time.Duration(rng.IntN(1500)) * time.Millisecond
		s := revenue.Sale{Product: fmt.Sprintf("p%d", rng.IntN(7)), AmountCents: int64(rng.IntN(1000)), Time: t0.Add(at - time.Duration(rng.IntN(20))*time.Second)}
		if rng.IntN(30) == 0 {
			s.AmountCents = -1
		}
		sales = append(sales, s)
		h.in.Pipe(fmt.Sprintf("till-%d", rng.IntN(5)), s)
		if rng.IntN(20) == 0 {
			h.d.AdvanceWallClock(time.Duration(rng.IntN(5)) * time.Second)
		}
	}
	h.d.AdvanceWallClock(time.Hour)
	var dead []revenue.Sale
	for _, r := range h.d.DeadLetters() {
		s, err := topology.JSON[revenue.Sale]().Decode(r.Value)
		require.NoError(t, err)
		dead = append(dead, s)
	}
	totals := h.read()
	require.NotEmpty(t, totals)
	require.Greater(t, len(dead), 500/30/2)
	require.NoError(t, revenue.Check(sales, dead, totals, time.Time{}))
}
