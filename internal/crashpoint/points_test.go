package crashpoint

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAllDistinct: EXACTLY_CRASH_AT selects a point by name, so two points
// with one name would crash at the wrong place.
func TestAllDistinct(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, p := range slices.Concat(All, Mirror, Relay, Sink) {
		require.NotEmpty(t, p)
		require.False(t, seen[p], "duplicate crash point %q", p)
		seen[p] = true
	}
	require.Len(t, seen, 18)
}
