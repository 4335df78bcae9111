// Package state keeps the local state of an exactly process instance in one
// Pebble database: every partition of every state store of every task,
// the changelog checkpoint of each store partition, and the last consumed
// offset of each input partition.
//
// The package is the processor's storage engine. [DB], [Staged] and
// [Restorer] are exported for the processor (and the project's own
// benchmarks and tests), not as an application API: applications read
// state through the processor's queries, and write it only from a
// topology's processors, so that every write is in a Kafka transaction and
// its changelog.
//
// # Transactions
//
// The processor stages the state writes of one Kafka transaction in a
// [Staged] batch (read-your-writes over the committed data). When the Kafka
// transaction commits it records the checkpoints in the same batch and calls
// [Staged.Apply]; when it aborts it calls [Staged.Discard]. Apply commits
// the batch atomically without fsync: Pebble recovers a prefix of its
// batches after a crash, so the local state is always the state left by
// some committed transaction (invariant S1 of DESIGN.md) and the
// local checkpoints can only lag behind Kafka, never lead.
//
// # Restore
//
// A [Restorer] replays one changelog partition into one store partition.
// Every flush writes a batch of records together with the checkpoint (the
// highest changelog offset seen) in one Pebble batch, so a crash mid-restore
// leaves a consistent prefix that the next restore resumes from.
//
// # Key layout
//
// All keys share one Pebble keyspace, ordered bytewise. A one-byte tag
// separates the kinds; names are length-prefixed so that no name's keys
// can be a prefix of another name's keys:
//
//	data key                 0x01 | uvarint(len(store)) | store | uint32be(partition) | user key
//	changelog checkpoint     0x02 | uvarint(len(store)) | store | uint32be(partition)
//	input checkpoint         0x03 | uvarint(len(topic)) | topic | uint32be(partition)
//	changelog binding        0x04 | uvarint(len(store)) | store | uint32be(partition)
//
// Checkpoint values are 8-byte big-endian int64 offsets. A binding's value
// names the changelog the store partition's checkpoint was taken from (the
// processor stores its topic ID): a checkpoint is only valid against that
// changelog, never against one deleted and recreated under the same name. The data of one
// store partition is the key range [prefix, successor(prefix)), which is
// what iterators bound themselves to and what [DB.WipePartition] deletes.
//
// # Concurrency
//
// A [DB] is safe for concurrent use. [Staged], [Restorer] and [Iter] are
// not: each belongs to one goroutine at a time. [DB.Close] waits for calls
// in flight, then closes any iterator left open; later calls return
// [ErrClosed].
package state
