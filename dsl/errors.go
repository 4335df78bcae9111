package dsl

import (
	"errors"
	"fmt"
)

// ErrDuplicateName is wrapped by the *BuildError of an operator whose
// explicit name (Named) is already taken by another operator.
var ErrDuplicateName = errors.New("dsl: duplicate operator name")

// ErrNameRequired is wrapped by the *BuildError of a stateful operator
// without Named when the Builder was made with RequireNames.
var ErrNameRequired = errors.New("dsl: stateful operator needs an explicit name")

// ErrBuilt is wrapped by the *BuildError of an operator added after
// Builder.Build: it is not connected, and a later Build fails.
var ErrBuilt = errors.New("dsl: operator added after Build")

// BuildError is returned by Builder.Build (joined with the others and with
// the errors of topology.Builder.Build); it names the operator at fault.
type BuildError struct {
	Operator string // the operator's name, explicit or derived
	Err      error  // one of the Err* sentinels of this package
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("dsl: operator %q: %s", e.Operator, e.Err.Error())
}

// Unwrap returns the sentinel.
func (e *BuildError) Unwrap() error { return e.Err }
