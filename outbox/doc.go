// Package outbox relays rows of an outbox table in a SQL database to Kafka
// exactly once: the transactional outbox pattern without duplicates.
//
// A service writes an event as a row of the outbox table inside its own
// database transaction (Writer.Write), so that "save the order and its
// event" is one commit. The Relay reads committed rows in batches, in id
// order, and produces each batch in one Kafka transaction together with a
// progress record, in the compacted topic <name>-outbox-progress, naming
// the row ids the batch published. Only after the Kafka commit does it
// delete those rows, in one database transaction.
//
// The relay keeps no high-water id: sequence and auto-increment ids are
// not committed in id order (A takes 5, B takes 6, B commits first), so a
// relay that skips ids below the last one it published loses rows. Every
// batch reads whatever rows the table holds; a published row leaves the
// table, an unpublished one stays until a batch takes it.
//
// Restart: the relay first initializes its transactional producer with the
// stable transactional ID <name>-outbox, which fences every earlier relay
// of that name and ends its open transaction, then reads its progress with
// read_committed and deletes the rows the last committed batch published
// (they are still there if it stopped between the commit and the delete).
// Only then does it read new rows. A batch whose Kafka transaction did not
// commit left its rows in the table and is read again. A fenced relay's
// produce and commit fail, so it can never publish after its successor.
//
// See the README's "The outbox relay" for the guarantee, its limits and
// the SQL of the table.
package outbox
