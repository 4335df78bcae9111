// Package dbsink applies Kafka records to a SQL database exactly once: the
// transactional database sink.
//
// A Kafka transaction cannot span a database, so the sink keeps its
// progress on the side that commits last, the database: every polled batch
// is applied in ONE database transaction that calls the user's Handler for
// each record AND moves the consumed offsets in the sink's offsets table.
// Either both become visible or neither does. Kafka is read with
// read_committed in a consumer group that only assigns partitions; the
// group's offsets are never committed and never read. On assignment a
// partition resumes from the next offset stored in the database.
//
// Zombie fencing: each partition's row in the offsets table has an owner
// epoch. Taking a partition bumps it (in its own transaction, under the
// row's lock) and reads the stored next offset; every batch's transaction
// moves the next offset only WHERE the epoch is still the one this member
// took, under the same row lock, and rolls back when no row matches. So a
// member that lost a partition without hearing so (expelled from the group
// while paused, frozen, or partitioned away) can never commit a write for
// it: either its commit came before the new owner's bump, and the new owner
// reads the offsets it committed, or after, and the epoch no longer
// matches. See the README ("The transactional database sink") for why this
// holds on PostgreSQL, MariaDB/MySQL (InnoDB) and SQLite.
//
// Bad input: a Handler returns Malformed(err) for a record it rejects; the
// record then goes to the dead-letter table inside the same transaction,
// with its topic, partition, offset and the error, and nothing else of it
// is applied. Any other error rolls the transaction back; the batch is
// tried again with a backoff, and Run stops after repeated failures: nothing
// is lost, nothing applied twice.
//
// Schema prints the tables' SQL for each dialect; Run creates them when
// missing.
package dbsink
