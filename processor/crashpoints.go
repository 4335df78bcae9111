package processor

// The named crash points, in the order a transaction reaches them. The crash
// tests build the binary with -tags exactly_crashpoints and set
// EXACTLY_CRASH_AT to one of them.
const (
	CrashAfterPoll   = "after-poll"   // records polled, transaction not begun
	CrashMidProduce  = "mid-produce"  // some of the transaction's records produced
	CrashBeforeEnd   = "before-end"   // everything produced and flushed, End not called
	CrashAfterCommit = "after-commit" // End committed, local state not applied yet
	CrashMidRestore  = "mid-restore"  // a restore applied part of a changelog
	CrashInAssigned  = "in-assigned"  // inside OnPartitionsAssigned, before restore
	CrashInRevoked   = "in-revoked"   // inside OnPartitionsRevoked
)

// CrashPoints lists every crash point.
var CrashPoints = []string{CrashAfterPoll, CrashMidProduce, CrashBeforeEnd, CrashAfterCommit, CrashMidRestore, CrashInAssigned, CrashInRevoked}
