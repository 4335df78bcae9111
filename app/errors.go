package app

import (
	"errors"
	"flag"
	"fmt"
)

var (
	// ErrUsage is wrapped by every usage or configuration error: an
	// unknown command or flag, a bad value, a missing required flag.
	// ExitCode maps it to 2.
	ErrUsage = errors.New("usage")

	// ErrViolations is returned (wrapped) by a check that ran and found
	// problems, such as a verification that found violations. ExitCode
	// maps it to 3.
	ErrViolations = errors.New("verification failed")
)

// Exit statuses; see the package documentation.
const (
	ExitOK         = 0 // success, help or version
	ExitFailure    = 1 // runtime failure
	ExitUsage      = 2 // usage or configuration error
	ExitViolations = 3 // a check found problems
	ExitWarning    = 4 // doctor: warnings, nothing critical
	ExitCritical   = 5 // doctor: something critical
)

// Usagef returns a usage error (exit status 2) with the formatted message.
// Name the flag or environment variable at fault in it.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// exitError is a check's verdict with its exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the exit status of a command that returned err: 0 for
// nil or flag.ErrHelp, 2 for ErrUsage, 3 for ErrViolations, 4 or 5 for
// the doctor's verdicts, 1 for anything else.
func ExitCode(err error) int {
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrViolations):
		return ExitViolations
	case errors.Is(err, ErrUsage):
		return ExitUsage
	}
	return ExitFailure
}
