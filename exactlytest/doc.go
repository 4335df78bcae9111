// Package exactlytest holds the helpers that tests, verifiers, benchmarks
// and the doctor share to check an exactly-once pipeline from the outside:
//
//   - ReadCommitted reads a topic to its end with read_committed: up to the
//     last stable offsets listed when it starts, keeping control records so
//     that it knows it reached the end even when a partition ends in a
//     transaction marker, and bounded by a timeout;
//   - ListOffsets and Offsets.Hanging check that no transaction is left
//     open (E5), EndOffsets, StableOffsets, GroupOffsets and Lag are the
//     kadm look-ups tests poll;
//   - Duplicates, Missing and AbortedVisible are the building blocks of
//     E1 (no output twice), E2 (every input reflected) and "no aborted data
//     visible" (read_committed compared with read_uncommitted);
//   - OpenStateDir, ReadStore and DiffState read a stopped processor's
//     local state directory and compare it with the fold of the committed
//     input (E4).
//
// The package talks Kafka through franz-go (kgo, kadm) and reads state
// through package state; it does not import the processor, so the
// processor's own tests can use it.
package exactlytest
