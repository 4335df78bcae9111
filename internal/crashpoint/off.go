//go:build !exactly_crashpoints

package crashpoint

// Hit marks a place where the crash tests kill the process; it does nothing
// in normal builds (the exactly_crashpoints build tag compiles the real one).
func Hit(string) {}
