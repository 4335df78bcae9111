package processor

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/internal/tuning"
)

// This file keeps the old test-only exports compiling until
// /work/api-renames.sh moves their callers to internal/crashpoint and
// internal/tuning; the script then deletes it. Nothing new may use them.

// Crash points: see internal/crashpoint.
//
// Deprecated: test harness only; use internal/crashpoint.
const (
	CrashAfterPoll   = crashpoint.AfterPoll
	CrashMidProduce  = crashpoint.MidProduce
	CrashBeforeEnd   = crashpoint.BeforeEnd
	CrashAfterCommit = crashpoint.AfterCommit
	CrashMidRestore  = crashpoint.MidRestore
	CrashInAssigned  = crashpoint.InAssigned
	CrashInRevoked   = crashpoint.InRevoked
)

// CrashPoints lists every crash point.
//
// Deprecated: use crashpoint.All.
var CrashPoints = crashpoint.All

func crashPoint(name string) { crashpoint.Hit(name) }

// ClientTuning returns the processor's kgo latency settings.
//
// Deprecated: use internal/tuning.ClientOpts.
func ClientTuning() []kgo.Opt { return tuning.ClientOpts() }
