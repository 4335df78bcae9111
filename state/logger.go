package state

import (
	"context"
	"fmt"
	"log/slog"
)

// pebbleLogger routes Pebble's printf-style logger into a slog.Logger.
type pebbleLogger struct{ l *slog.Logger }

// Infof implements pebble.Logger.
func (p pebbleLogger) Infof(format string, args ...any) {
	p.log(slog.LevelInfo, format, args)
}

// Errorf implements pebble.Logger.
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.log(slog.LevelError, format, args)
}

// Fatalf implements pebble.Logger. Pebble calls it on an unrecoverable
// internal error and requires that it not return (its default logger calls
// os.Exit); this one logs the message and then panics, which at least runs
// deferred calls and prints a stack.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("state: pebble fatal error: " + msg)
}

func (p pebbleLogger) log(level slog.Level, format string, args []any) {
	if !p.l.Enabled(context.Background(), level) {
		return
	}
	p.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "pebble")
}
