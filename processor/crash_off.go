//go:build !exactly_crashpoints

package processor

// crashPoint marks a place where the crash tests kill the process; it does
// nothing in normal builds (see crash_on.go).
func crashPoint(string) {}
