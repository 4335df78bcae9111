package state

import "errors"

var (
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("state: closed")

	// ErrLocked is returned (wrapped) by Open when another DB, in this
	// process or another one, holds the directory.
	ErrLocked = errors.New("state: directory locked by another DB")

	// ErrFinished is returned by a Staged or a Restorer used after it was
	// applied or discarded.
	ErrFinished = errors.New("state: batch already applied or discarded")

	// ErrInvalidArgument is returned (wrapped) for an empty store or topic
	// name, a negative partition or a negative offset.
	ErrInvalidArgument = errors.New("state: invalid argument")

	// ErrOffsetOrder is returned (wrapped) by a Restorer fed an offset that
	// is not above every offset it has seen, including the checkpoint it
	// started from.
	ErrOffsetOrder = errors.New("state: changelog offset out of order")

	// ErrCorrupt is returned (wrapped) when a stored record cannot be
	// decoded, such as a checkpoint value that is not 8 bytes.
	ErrCorrupt = errors.New("state: corrupt record")
)
