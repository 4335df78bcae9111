// Package processor runs a topology exactly once on a Kafka-protocol
// cluster.
//
// One Processor is one instance of an application: one kgo client with a
// GroupTransactSession, one Pebble database for all of its tasks (a task is
// one input partition), one stable transactional ID derived from the
// instance ID. Each unit of work is one Kafka transaction holding the output
// records, the state changelog records, the per-input-partition offset
// records and the consumer offsets. Local state moves only when that
// transaction committed; on assignment of a partition its state is restored
// from the changelog before its first record is processed.
//
// DESIGN.md at the repository root describes the protocol and its
// invariants, with a map of where each part lives.
package processor
