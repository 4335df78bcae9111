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
// every transaction open at that moment has ended), from the offsets topic.
//
// Each instance produces with the stable transactional ID
// <name>-<instance id>, so a restarted instance fences its previous
// incarnation and aborts its open transaction at once. A revoke (or a loss)
// of any partition dooms the open transaction: the revoke callback waits
// for a commit in flight, and a commit that starts after a revoke aborts,
// so no instance commits a partition after it gave it up.
//
// What this does not fence: a member the source group expels before it
// hears so (a pause past the session timeout, a cut from the source cluster
// only) may still commit a transaction for a partition the group already
// gave to another instance, whose transactional ID differs. The group lives
// on the source cluster, so KIP-447's generation check cannot guard the
// target transaction. Keep the transaction timeout and the commit interval
// far below the session timeout.
//
// Record fidelity: key, value (a null value stays null), headers and
// timestamp are kept; partition p goes to partition p; target topics are
// created with the source's partition count and its cleanup and retention
// settings. Verify compares source and target record by record.
package mirror
