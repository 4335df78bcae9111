package dsl

import (
	"errors"
	"fmt"
)

// ErrRepartitionRequired is wrapped by the *BuildError of a stateful
// operator placed after a key change (Map, SelectKey, FlatMap, or a Merge
// with such a stream) without a repartition in between. A task owns one
// partition of its stores, and the records of a re-keyed stream are still
// in the partition of their old key: counting them by the new key in place
// would split one key's state over several tasks. The fix is a repartition
// topic, which needs topology.Repartition (not there yet); until then such
// a topology is refused when it is built.
var ErrRepartitionRequired = errors.New("dsl: a stateful operator after a key change needs a repartition topic")

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
