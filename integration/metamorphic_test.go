package integration

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/internal/crashpoint"
	"github.com/exactly-stream/exactly/processor"
)

// metamorphicRuns is how many differently configured runs process the same
// input; run 0 is the plain reference (one instance, nothing happens).
const metamorphicRuns = 5

// metaRun is the random configuration of one run.
type metaRun struct {
	maxRecords     int
	commitInterval time.Duration
	instances      int
	child          bool   // one instance is a child process of the crash-point binary
	crashAt        string // its crash point ("" none)
	actions        []metaAction
	// The input comes in three parts. After the first is committed,
	// production stops for idle, and idleActions happen in that quiet:
	// instances that process nothing go through rebalances, which kgo's
	// transact session reports differently than during a transaction.
	// With dropIdleJoiners, once the second part is committed, the
	// in-process instances started during the idle phase stop before the
	// third part comes: partitions moved away from an idle instance go
	// back to it after others processed them, and it processes more.
	idle            time.Duration
	idleActions     []metaIdleAction
	dropIdleJoiners bool
}

// metaIdleAction happens after after into the idle phase.
type metaIdleAction struct {
	after time.Duration
	kind  string
}

// metaIdle is how long the idle phase of a random run lasts: more than
// three session timeouts (6 s in the env), so that members a kill left
// behind expire during it.
const metaIdle = 20 * time.Second

// metaAction happens once the group committed at offsets input records.
type metaAction struct {
	at   int64
	kind string // "restart", "add", "remove", "kill"
}

func (m metaRun) String() string {
	var acts []string
	for _, a := range m.actions {
		acts = append(acts, fmt.Sprintf("%s@%d", a.kind, a.at))
	}
	var idle []string
	for _, a := range m.idleActions {
		idle = append(idle, fmt.Sprintf("%s@%s", a.kind, a.after))
	}
	return fmt.Sprintf("%d instances (child %v, crash at %q), max records %d, commit interval %s, actions %s, idle %s: %s, drop idle joiners %v",
		m.instances, m.child, m.crashAt, m.maxRecords, m.commitInterval, strings.Join(acts, " "), m.idle, strings.Join(idle, " "), m.dropIdleJoiners)
}

func randomMetaRun(rng *rand.Rand, inputs int) metaRun {
	m := metaRun{
		maxRecords:     1 + rng.IntN(300),
		commitInterval: time.Duration(5+rng.IntN(295)) * time.Millisecond,
		instances:      1 + rng.IntN(3),
		child:          rng.IntN(2) == 0,
	}
	if m.child && rng.IntN(2) == 0 {
		m.crashAt = fmt.Sprintf("%s:%d", crashpoint.All[rng.IntN(len(crashpoint.All))], 1+rng.IntN(5))
	}
	kinds := []string{"restart", "add", "remove"}
	if m.child {
		kinds = append(kinds, "kill")
	}
	for range 1 + rng.IntN(3) {
		m.actions = append(m.actions, metaAction{at: int64(inputs/10 + rng.IntN(inputs*7/10)), kind: kinds[rng.IntN(len(kinds))]})
	}
	// The idle phase always starts with two joins: a join revokes
	// partitions from the members, and the second revoke an idle member
	// sees is the one kgo's transact session does not pass on.
	m.idle, m.dropIdleJoiners = metaIdle, true
	for range 2 + rng.IntN(3) {
		m.idleActions = append(m.idleActions, metaIdleAction{after: time.Duration(rng.Int64N(int64(metaIdle * 3 / 4))), kind: kinds[rng.IntN(len(kinds))]})
	}
	slices.SortFunc(m.idleActions, func(a, b metaIdleAction) int { return cmp.Compare(a.after, b.after) })
	m.idleActions[0].kind, m.idleActions[1].kind = "add", "add"
	// Actions in order of progress.
	for i := range m.actions {
		for j := i + 1; j < len(m.actions); j++ {
			if m.actions[j].at < m.actions[i].at {
				m.actions[i], m.actions[j] = m.actions[j], m.actions[i]
			}
		}
	}
	return m
}

// TestMetamorphic runs one input (a fixed seed) through the order service
// under random transaction sizes, commit intervals, instance counts,
// restarts, scaling and crashes (in-process stop and start, and the SIGKILL
// or crash point of a child process), while records flow and during an idle
// phase between two parts of the input, and requires the same events per
// customer every time, equal to the reference run's. The configurations
// come from a seed printed in the log; EXACTLY_METAMORPHIC_SEED replays
// one.
func TestMetamorphic(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EXACTLY_METAMORPHIC_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "EXACTLY_METAMORPHIC_SEED")
	}
	t.Logf("configuration seed %d (replay with EXACTLY_METAMORPHIC_SEED=%d)", seed, seed)
	const inputs = 1500
	rng := rand.New(rand.NewPCG(seed, 0))
	runs := make([]metaRun, metamorphicRuns)
	runs[0] = metaRun{maxRecords: 1000, commitInterval: 100 * time.Millisecond, instances: 1}
	for i := 1; i < len(runs); i++ {
		runs[i] = randomMetaRun(rng, inputs)
	}
	crashpointBinary(t)
	results := make([]map[string][]orders.Event, len(runs))
	t.Run("runs", func(t *testing.T) {
		for i, m := range runs {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				t.Logf("run %d: %s", i, m)
				results[i] = runMetamorphic(t, m, inputs)
			})
		}
	})
	if t.Failed() {
		return
	}
	require.NotEmpty(t, results[0])
	for i := 1; i < len(runs); i++ {
		for id, want := range results[0] {
			require.Equal(t, want, results[i][id], "run %d (%s): events of customer %s differ from the reference run", i, runs[i], id)
		}
		require.Len(t, results[i], len(results[0]), "run %d: customers", i)
	}
}

// runMetamorphic runs one configuration to the end, checks E1-E5, and
// returns the events per customer.
func runMetamorphic(t *testing.T, m metaRun, inputs int) map[string][]orders.Event {
	// Six partitions: three instances then hold two each, and a join can
	// take a partition from every member, which four cannot show.
	e := newEnvParts(t, 6)
	// The same records in every run, in three parts around the idle phase
	// and the drop of its joiners.
	first, second := inputs*2/3, inputs*5/6
	e.produce(first, 1700, 0)
	group := e.group("order")
	opts := []processor.Opt{processor.MaxRecordsPerTxn(m.maxRecords), processor.CommitInterval(m.commitInterval)}
	args := []string{"--max-records", strconv.Itoa(m.maxRecords), "--commit-interval", m.commitInterval.String()}

	var running []*inst
	var idleJoiners []*inst // started during the idle phase
	idling := false
	next := 0
	startInst := func(name string) {
		in := e.start("order", name, name, opts...)
		running = append(running, in)
		if idling {
			idleJoiners = append(idleJoiners, in)
		}
	}
	for range m.instances {
		startInst(fmt.Sprintf("i%d", next))
		next++
	}
	var kid *child
	kidDir := filepath.Join(e.root, "kid")
	var extra []string
	if m.child {
		extra = append(extra, kidDir)
		var env []string
		if m.crashAt != "" {
			env = []string{"EXACTLY_CRASH_AT=" + m.crashAt}
		}
		kid = e.spawn("kid", kidDir, spawnOpts{bin: crashpointBinary(t), env: env, args: args})
	}
	// respawn replaces the child once it died (a kill or its crash point).
	respawn := func() {
		if kid != nil && kid.exited() {
			kid = e.spawn("kid", kidDir, spawnOpts{bin: crashpointBinary(t), args: args})
		}
	}
	act := func(kind string) {
		respawn()
		switch {
		case kind == "restart" && len(running) > 0:
			in := running[0]
			in.close(t)
			running = running[1:]
			startInst(in.name)
		case kind == "add" || kind == "remove" && len(running) == 0:
			startInst(fmt.Sprintf("i%d", next))
			next++
		case kind == "remove" && (len(running) > 1 || kid != nil):
			running[0].close(t)
			running = running[1:]
		case kind == "kill" && kid != nil:
			kid.kill(t)
			respawn()
		}
	}
	resumed := false
	idleThenResume := func() {
		if resumed {
			return
		}
		resumed = true
		waitCaughtUpRespawning(e, group, respawn)
		start := time.Now()
		idling = true
		for _, a := range m.idleActions {
			// Sleeping is the point here: time passes with no input.
			time.Sleep(time.Until(start.Add(a.after)))
			act(a.kind)
		}
		time.Sleep(time.Until(start.Add(m.idle)))
		idling = false
		e.produce(second-first, 1701, 0)
	}
	dropped := false
	dropIdleJoiners := func() {
		if dropped {
			return
		}
		dropped = true
		if m.dropIdleJoiners {
			waitCaughtUpRespawning(e, group, respawn)
			for _, in := range idleJoiners {
				i := slices.Index(running, in)
				if i >= 0 && (len(running) > 1 || kid != nil) {
					in.close(t)
					running = slices.Delete(running, i, i+1)
				}
			}
		}
		e.produce(inputs-second, 1702, 0)
	}
	for _, a := range m.actions {
		if a.at > int64(first) {
			idleThenResume()
		}
		if a.at > int64(second) {
			dropIdleJoiners()
		}
		e.waitCommitted(group, a.at)
		act(a.kind)
	}
	idleThenResume()
	dropIdleJoiners()
	// Wait for the complete output; the child may still hit its crash
	// point, and is replaced each time.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		respawn()
		e.failed()
		rep, err := e.tryVerify(false)
		if err == nil && rep.OK() {
			break
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
			t.Fatalf("the run did not complete correctly within 2m:\n%s", rep)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if kid != nil {
		kid.stopOrCrash(t)
	}
	e.finalCheck(false, extra...)
	return eventsByCustomer(e.readFrom(e.topics.Events, nil))
}

// waitCaughtUpRespawning is waitCaughtUp for a run whose child may hit its
// crash point meanwhile: respawn replaces it.
func waitCaughtUpRespawning(e *env, group string, respawn func()) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		respawn()
		e.failed()
		lag, err := e.lag(group)
		if err == nil && lag == 0 {
			return
		}
		require.True(e.t, time.Now().Before(deadline), "group %s did not catch up within 2m: lag %d (%v)", group, lag, err)
		time.Sleep(100 * time.Millisecond)
	}
}
