// Package mirror copies topics from a source cluster to a target cluster
// exactly once.
//
// A Kafka transaction cannot span two clusters, so the mirror keeps its
// progress on the side that commits: every transaction on the TARGET
// cluster holds the copied records AND, in a compacted offsets topic on
// the target (<name>-mirror-offsets by default), the next source offset of
// every source partition it copied from. Either both become visible or
// neither does. The source is read with read_committed; a consumer group
// on the source cluster only assigns partitions to instances, and its
// offsets are never committed. On assignment a partition resumes from the
// position read, read_committed and up to the high watermark (so after
// every transaction open at that moment has ended), from the offsets topic;
// a listing that does not find that topic (kgo's cached metadata from
// before it was created) fails the assignment, and kgo rejoins, rather
// than reading as no positions.
//
// Every source partition has its own transactional ID,
// <name>/<topic>/<partition>, and its owner a target producer for it. On
// assignment an instance first initializes the IDs of its new partitions,
// which fences every earlier owner of each (a zombie that was expelled
// from the source group without hearing so, a paused process, a restarted
// instance's previous incarnation) and ends the transaction it left open;
// only then it reads the positions, so they include every commit an
// earlier owner can ever make. A zombie's next commit fails and it stops.
// A revoke (or a loss) waits for a commit in flight, and a partition's
// transaction commits only if the partition is still owned, so a revoked
// partition's transaction aborts without waiting for the fence. Each
// commit interval runs one transaction per partition with records,
// concurrently.
//
// Each position record also carries a sync point (see Sync): the source
// offset and target offset from which the copies correspond one to one;
// offset translation counts records from it.
//
// Record fidelity: key, value (a null value stays null), headers and
// timestamp are kept; partition p goes to partition p; target topics are
// created with the source's partition count and its cleanup and retention
// settings. Verify compares source and target record by record.
package mirror
