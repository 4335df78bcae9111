package dsl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNilFunc: nil is Go's nil for the nilable kinds, never for others,
// and checking costs no allocation (it runs on every aggregated record).
func TestNilFunc(t *testing.T) {
	x := 1
	var iface any = x
	require.True(t, nilFunc[*int]()(nil))
	require.False(t, nilFunc[*int]()(&x))
	require.True(t, nilFunc[[]byte]()(nil))
	require.False(t, nilFunc[[]byte]()([]byte{}))
	require.True(t, nilFunc[map[string]int]()(nil))
	require.True(t, nilFunc[any]()(nil))
	require.False(t, nilFunc[any]()(iface))
	require.False(t, nilFunc[string]()(""))
	require.False(t, nilFunc[struct{}]()(struct{}{}))

	ptr, slice, m, a := nilFunc[*int](), nilFunc[[]byte](), nilFunc[map[string]int](), nilFunc[any]()
	b := []byte("x")
	mm := map[string]int{}
	allocs := testing.AllocsPerRun(100, func() {
		_ = ptr(&x) || slice(b) || m(mm) || a(iface)
	})
	require.Zero(t, allocs)
}
