package mirror

import (
	"errors"
	"fmt"
)

var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("mirror: invalid configuration")

	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("mirror: closed")
)

// PartitionMismatchError is returned when a target topic exists with a
// partition count unlike its source topic's: partition p is copied to
// partition p, so the counts must be equal.
type PartitionMismatchError struct {
	SourceTopic      string
	TargetTopic      string
	SourcePartitions int
	TargetPartitions int
}

func (e *PartitionMismatchError) Error() string {
	return fmt.Sprintf("mirror: topic %s has %d partitions on the source but target topic %s has %d; partition p is copied to partition p, so they must be equal",
		e.SourceTopic, e.SourcePartitions, e.TargetTopic, e.TargetPartitions)
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
