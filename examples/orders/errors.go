package orders

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error that rejects a record: a value that
// does not decode strictly or fails validation. The runtime dead-letters such
// records.
var ErrMalformed = errors.New("orders: malformed record")

// malformedf returns an error wrapping ErrMalformed (and any errors among
// args, for %w verbs in format).
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ConfigError names a configuration field with a bad value.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("orders: invalid config: %s %s", e.Field, e.Reason)
}
