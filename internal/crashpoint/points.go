// Package crashpoint names the places where the crash tests kill a process
// and kills it there. Points are compiled in only with the
// exactly_crashpoints build tag: the crash tests build the binary with
// -tags exactly_crashpoints and set EXACTLY_CRASH_AT=<point>[:<n>] to make
// it SIGKILL itself the n-th time (default 1) it reaches that point. In
// normal builds Hit does nothing.
//
// It is internal: the points are the test harness's contract with the
// processor, not part of the library's API.
package crashpoint

// The named crash points, in the order a transaction reaches them.
const (
	AfterPoll   = "after-poll"   // records polled, transaction not begun
	MidProduce  = "mid-produce"  // some of the transaction's records produced
	BeforeEnd   = "before-end"   // everything produced and flushed, End not called
	AfterCommit = "after-commit" // End committed, local state not applied yet
	MidRestore  = "mid-restore"  // a restore applied part of a changelog
	InAssigned  = "in-assigned"  // inside OnPartitionsAssigned, before restore
	InRevoked   = "in-revoked"   // inside OnPartitionsRevoked
)

// All lists every crash point.
var All = []string{AfterPoll, MidProduce, BeforeEnd, AfterCommit, MidRestore, InAssigned, InRevoked}

// The mirror's crash points (package mirror), in the order a round of
// transactions reaches them.
const (
	MirrorPolled    = "mirror-polled"    // records taken, no transaction begun
	MirrorProduced  = "mirror-produced"  // copies produced into open transactions, positions not yet
	MirrorFlushed   = "mirror-flushed"   // everything acknowledged, commit not decided
	MirrorCommitted = "mirror-committed" // the round's commits returned
)

// Mirror lists the mirror's crash points.
var Mirror = []string{MirrorPolled, MirrorProduced, MirrorFlushed, MirrorCommitted}

// The outbox relay's crash points (package outbox), in the order a batch
// reaches them.
const (
	RelayRead      = "relay-read"      // rows read, nothing produced
	RelayProduced  = "relay-produced"  // half the batch produced, nothing flushed
	RelayFlushed   = "relay-flushed"   // everything acknowledged, commit not called
	RelayCommitted = "relay-committed" // the Kafka transaction committed, rows not deleted
	RelayDeleting  = "relay-deleting"  // inside the delete transaction, before its commit
)

// Relay lists the outbox relay's crash points.
var Relay = []string{RelayRead, RelayProduced, RelayFlushed, RelayCommitted, RelayDeleting}

// The database sink's crash points (package dbsink), in the order a batch
// reaches them.
const (
	SinkApplied   = "sink-applied"   // every record of the batch applied in the open database transaction, not committed
	SinkCommitted = "sink-committed" // the batch's database transaction committed, nothing else done
)

// Sink lists the database sink's crash points.
var Sink = []string{SinkApplied, SinkCommitted}
