package processor

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// simMember is a group member of the simulated group: what it owns and the
// generation it last joined, as a kgo consumer reports them in JoinGroup.
type simMember struct {
	id     string
	inst   *string
	topics []string
	owned  map[string][]int32
	gen    int32
}

// simGroup drives the task balancer as kgo's leader and consumers would,
// without brokers: each round every member joins with its metadata, the
// balancer plans, every member takes its assignment; a cooperative member
// that lost partitions rejoins, which is another round.
type simGroup struct {
	t       *testing.T
	topics  map[string]int32
	members []*simMember
	gen     int32
	rounds  int
}

func newSimGroup(t *testing.T, topics map[string]int32) *simGroup {
	return &simGroup{t: t, topics: topics}
}

func (g *simGroup) topicNames() []string {
	return slices.Sorted(maps.Keys(g.topics))
}

func (g *simGroup) add(id string) *simMember {
	m := &simMember{id: id, topics: g.topicNames(), owned: map[string][]int32{}}
	g.members = append(g.members, m)
	return m
}

func (g *simGroup) remove(id string) {
	g.members = slices.DeleteFunc(g.members, func(m *simMember) bool { return m.id == id })
}

func (g *simGroup) member(id string) *simMember {
	for _, m := range g.members {
		if m.id == id {
			return m
		}
	}
	g.t.Fatalf("no member %s", id)
	return nil
}

// joinMembers is the JoinGroup response's member list, in kgo's order.
func (g *simGroup) joinMembers() []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.inst
		owned := make(map[string][]int32)
		for t, ps := range m.owned {
			owned[t] = slices.Sorted(slices.Values(ps))
		}
		jm.ProtocolMetadata = taskBalancer{}.JoinGroupMetadata(m.topics, owned, m.gen)
		out = append(out, jm)
	}
	sort.Slice(out, func(i, j int) bool { return memberLess(&out[i], &out[j]) })
	return out
}

// balance runs the balancer on members and returns member => topic =>
// partitions, and the encoded sync assignments.
func balanceOnce(t *testing.T, members []kmsg.JoinGroupResponseMember, topics map[string]int32) (map[string]map[string][]int32, []kmsg.SyncGroupRequestGroupAssignment) {
	t.Helper()
	bal := newTaskBalancer()
	mb, interests, err := bal.MemberBalancer(members)
	require.NoError(t, err)
	for tp := range topics {
		require.Contains(t, interests, tp)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	require.NoError(t, err)
	sync := into.IntoSyncAssignment()
	out := make(map[string]map[string][]int32)
	for _, a := range sync {
		parsed, err := bal.ParseSyncAssignment(a.MemberAssignment)
		require.NoError(t, err)
		out[a.MemberID] = parsed
	}
	return out, sync
}

// round runs one rebalance, checks what must hold in every round, applies
// the assignment and reports whether some member revoked partitions (and
// so rejoins).
func (g *simGroup) round() (assigned map[string]map[string][]int32, revoked bool) {
	t := g.t
	t.Helper()
	g.rounds++
	assigned, _ = balanceOnce(t, g.joinMembers(), g.topics)
	g.gen++

	type tp struct {
		t string
		p int32
	}
	claimedBy := make(map[tp][]string)
	maxGen := make(map[tp]int32)
	for _, m := range g.members {
		for tn, ps := range m.owned {
			for _, p := range ps {
				claimedBy[tp{tn, p}] = append(claimedBy[tp{tn, p}], m.id)
				maxGen[tp{tn, p}] = max(maxGen[tp{tn, p}], m.gen)
			}
		}
	}
	holder := make(map[tp]string)
	for id, a := range assigned {
		for tn, ps := range a {
			for _, p := range ps {
				k := tp{tn, p}
				require.Less(t, p, g.topics[tn], "partition out of range")
				if h, ok := holder[k]; ok {
					t.Fatalf("%s/%d assigned to %s and %s", tn, p, h, id)
				}
				holder[k] = id
				// Cooperative: a member is given nothing another
				// may still own, unless it owned it already at the
				// newest generation claimed (no new overlap: the
				// stale claimant revokes it at its sync).
				if keeps := slices.Contains(g.member(id).owned[tn], p) && g.member(id).gen == maxGen[k]; !keeps {
					for _, c := range claimedBy[k] {
						if c != id {
							t.Fatalf("%s/%d given to %s while %s still owns it", tn, p, id, c)
						}
					}
				}
			}
		}
		g.checkWhole(id, a)
	}

	for _, m := range g.members {
		next := assigned[m.id]
		for tn, ps := range m.owned {
			for _, p := range ps {
				if !slices.Contains(next[tn], p) {
					revoked = true
				}
			}
		}
		m.owned = maps.Clone(next)
		if m.owned == nil {
			m.owned = map[string][]int32{}
		}
		m.gen = g.gen
	}
	return assigned, revoked
}

// checkWhole asserts a member holds every subscribed topic's partition p
// (where it exists) or none of them.
func (g *simGroup) checkWhole(id string, a map[string][]int32) {
	g.t.Helper()
	m := g.member(id)
	for _, tn := range m.topics {
		for _, p := range a[tn] {
			for _, other := range m.topics {
				if p < g.topics[other] {
					require.Contains(g.t, a[other], p, "%s holds %s/%d but not %s/%d", id, tn, p, other, p)
				}
			}
		}
	}
}

// settle rebalances until no member revokes (at most three rounds: the
// plan, the revokes' rejoin, and a spare) and checks the settled
// assignment: every partition assigned, task counts within one.
func (g *simGroup) settle() map[int32]string {
	g.t.Helper()
	for i := 0; ; i++ {
		require.Less(g.t, i, 3, "no settled assignment after 3 rounds")
		if _, revoked := g.round(); !revoked {
			break
		}
	}
	return g.checkSettled()
}

func (g *simGroup) checkSettled() map[int32]string {
	g.t.Helper()
	owners := g.owners()
	var ntasks int32
	for _, n := range g.topics {
		ntasks = max(ntasks, n)
	}
	require.Len(g.t, owners, int(ntasks), "every task assigned")
	for tn, n := range g.topics {
		for p := range n {
			held := 0
			for _, m := range g.members {
				if slices.Contains(m.owned[tn], p) {
					held++
				}
			}
			require.Equal(g.t, 1, held, "%s/%d held once", tn, p)
		}
	}
	counts := g.counts()
	lo, hi := slices.Min(counts), slices.Max(counts)
	require.LessOrEqual(g.t, hi-lo, 1, "balanced: %v", counts)
	return owners
}

// owners is task => member, from what members own.
func (g *simGroup) owners() map[int32]string {
	out := make(map[int32]string)
	for _, m := range g.members {
		for _, ps := range m.owned {
			for _, p := range ps {
				out[p] = m.id
			}
		}
	}
	return out
}

func (g *simGroup) counts() []int {
	var out []int
	for _, m := range g.members {
		tasks := make(map[int32]bool)
		for _, ps := range m.owned {
			for _, p := range ps {
				tasks[p] = true
			}
		}
		out = append(out, len(tasks))
	}
	return out
}

func moved(before, after map[int32]string) (n int, tasks []int32) {
	for p, o := range before {
		if after[p] != o {
			n++
			tasks = append(tasks, p)
		}
	}
	slices.Sort(tasks)
	return n, tasks
}

func equalTopics(n int32, names ...string) map[string]int32 {
	out := make(map[string]int32)
	for _, t := range names {
		out[t] = n
	}
	return out
}

func TestTaskBalancerProtocol(t *testing.T) {
	b := newTaskBalancer()
	require.Equal(t, "exactly-task-cooperative", b.ProtocolName())
	require.True(t, b.IsCooperative())
	for _, other := range []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.CooperativeStickyBalancer(), kgo.StickyBalancer(), kgo.RoundRobinBalancer()} {
		require.NotEqual(t, other.ProtocolName(), b.ProtocolName())
	}

	raw := b.JoinGroupMetadata([]string{"a", "b"}, map[string][]int32{"b": {1, 3}, "a": {1, 3}}, 7)
	var meta kmsg.ConsumerMemberMetadata
	require.NoError(t, meta.ReadFrom(raw))
	require.Equal(t, []string{"a", "b"}, meta.Topics)
	require.Equal(t, int32(7), meta.Generation)
	require.Len(t, meta.OwnedPartitions, 2)
	require.Equal(t, "a", meta.OwnedPartitions[0].Topic)
	require.Equal(t, []int32{1, 3}, meta.OwnedPartitions[1].Partitions)
	// Unchanged input, identical bytes (the broker compares metadata).
	require.Equal(t, raw, b.JoinGroupMetadata([]string{"a", "b"}, map[string][]int32{"a": {1, 3}, "b": {1, 3}}, 7))
}

// TestTaskBalancerFreshGroups: a new group of m members over n tasks gets
// every task whole on one member, balanced, in one round.
func TestTaskBalancerFreshGroups(t *testing.T) {
	for _, tc := range []struct {
		n, members int
		topics     []string
	}{
		{1, 1, []string{"in"}},
		{6, 2, []string{"in", "app-r-repartition"}},
		{6, 4, []string{"a", "b", "c"}},
		{8, 3, []string{"a", "b"}},
		{2, 5, []string{"a", "b"}}, // more members than tasks
		{16, 16, []string{"a", "b"}},
	} {
		t.Run(fmt.Sprintf("%d-tasks-%d-members-%d-topics", tc.n, tc.members, len(tc.topics)), func(t *testing.T) {
			g := newSimGroup(t, equalTopics(int32(tc.n), tc.topics...))
			for i := range tc.members {
				g.add(fmt.Sprintf("m%02d", i))
			}
			_, revoked := g.round()
			require.False(t, revoked)
			g.checkSettled()
			require.Equal(t, 1, g.rounds)
		})
	}
}

// TestTaskBalancerFreshGroupContiguous: with nothing owned, tasks go in
// ranges in member order (instance IDs first), like the range balancer.
func TestTaskBalancerFreshGroupContiguous(t *testing.T) {
	g := newSimGroup(t, equalTopics(7, "a", "b"))
	g.add("z")
	g.add("y").inst = kmsg.StringPtr("i1")
	g.add("x")
	assigned, _ := g.round()
	require.Equal(t, []int32{0, 1, 2}, assigned["y"]["a"])
	require.Equal(t, []int32{3, 4}, assigned["x"]["a"])
	require.Equal(t, []int32{5, 6}, assigned["z"]["b"])
}

// TestTaskBalancerJoinLeaveMovesMinimal: a member joining a balanced group
// takes floor(n/(m+1)) tasks and nothing else moves; a member leaving
// frees exactly its tasks and nothing else moves.
func TestTaskBalancerJoinLeaveMovesMinimal(t *testing.T) {
	for _, tc := range []struct{ n, m int }{
		{6, 1}, {6, 2}, {6, 3}, {7, 3}, {12, 5}, {3, 3}, {2, 4}, {32, 7},
	} {
		t.Run(fmt.Sprintf("%d-tasks-%d-members", tc.n, tc.m), func(t *testing.T) {
			g := newSimGroup(t, equalTopics(int32(tc.n), "a", "b", "c"))
			for i := range tc.m {
				g.add(fmt.Sprintf("m%02d", i))
			}
			before := g.settle()

			g.add("new")
			after := g.settle()
			n, tasks := moved(before, after)
			require.Equal(t, tc.n/(tc.m+1), n, "moved %v", tasks)
			for _, p := range tasks {
				require.Equal(t, "new", after[p], "task %d moved elsewhere than to the new member", p)
			}

			for _, leaving := range []string{"m00", "new"} {
				if len(g.members) == 1 {
					break
				}
				before = after
				var its []int32
				for p, o := range before {
					if o == leaving {
						its = append(its, p)
					}
				}
				slices.Sort(its)
				g.remove(leaving)
				after = g.settle()
				_, tasks = moved(before, after)
				require.Equal(t, its, tasks, "only %s's tasks move", leaving)
			}
		})
	}
}

// TestTaskBalancerUnchangedMovesNothing: rebalancing an unchanged group
// gives everyone what it has, in one round.
func TestTaskBalancerUnchangedMovesNothing(t *testing.T) {
	g := newSimGroup(t, equalTopics(10, "a", "b"))
	for i := range 4 {
		g.add(fmt.Sprintf("m%d", i))
	}
	g.settle()
	g.add("m4")
	before := g.settle()
	for range 3 {
		rounds := g.rounds
		_, revoked := g.round()
		require.False(t, revoked)
		require.Equal(t, rounds+1, g.rounds)
		after := g.checkSettled()
		require.Equal(t, before, after)
	}
}

// TestTaskBalancerCooperativeTwoRounds: a task moving from A to C is in
// neither plan in the first round (A revokes it) and is C's in the second.
func TestTaskBalancerCooperativeTwoRounds(t *testing.T) {
	g := newSimGroup(t, equalTopics(4, "a", "b"))
	g.add("A")
	g.add("B")
	before := g.settle()
	require.Equal(t, map[int32]string{0: "A", 1: "A", 2: "B", 3: "B"}, before)

	g.add("C")
	first, revoked := g.round()
	require.True(t, revoked)
	require.Empty(t, first["C"], "C gets nothing while the owner still holds it")
	// A keeps the larger quota (a tie, member order); B gives up task 3.
	require.Equal(t, map[string][]int32{"a": {0, 1}, "b": {0, 1}}, first["A"])
	require.Equal(t, map[string][]int32{"a": {2}, "b": {2}}, first["B"], "B revokes task 3")

	second, revoked := g.round()
	require.False(t, revoked)
	require.Equal(t, map[string][]int32{"a": {3}, "b": {3}}, second["C"])
	require.Equal(t, first["A"], second["A"])
	require.Equal(t, first["B"], second["B"])
	g.checkSettled()
}

// TestTaskBalancerDeterministic: the same members in any order give the
// same sync assignments, byte for byte.
func TestTaskBalancerDeterministic(t *testing.T) {
	g := newSimGroup(t, equalTopics(9, "a", "b", "c"))
	for i := range 4 {
		g.add(fmt.Sprintf("m%d", i))
	}
	g.member("m2").inst = kmsg.StringPtr("static")
	g.settle()
	g.add("m9")
	g.remove("m1")
	members := g.joinMembers()
	_, want := balanceOnce(t, members, g.topics)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		_, got := balanceOnce(t, shuffled, g.topics)
		require.Equal(t, want, got)
	}
}

// TestTaskBalancerStaleClaim: a member rejoining with an old assignment
// claims a task another member now owns at a newer generation; the newer
// owner keeps it and the stale claimant is not given it.
func TestTaskBalancerStaleClaim(t *testing.T) {
	topics := equalTopics(2, "a", "b")
	g := newSimGroup(t, topics)
	a, b := g.add("A"), g.add("B")
	a.owned = map[string][]int32{"a": {0}, "b": {0}}
	a.gen = 5
	b.owned = map[string][]int32{"a": {0, 1}, "b": {0, 1}} // stale
	b.gen = 3
	assigned, _ := g.round() // round checks: nothing given while another owns it
	require.Equal(t, map[string][]int32{"a": {0}, "b": {0}}, assigned["A"])
	require.Equal(t, map[string][]int32{"a": {1}, "b": {1}}, assigned["B"])
	g.settle()
}

// TestTaskBalancerStaleClaimMovesBack: the stale claimant is where balance
// sends the task; it must wait for the current owner's revoke.
func TestTaskBalancerStaleClaimMovesBack(t *testing.T) {
	g := newSimGroup(t, equalTopics(2, "a", "b"))
	a, b := g.add("A"), g.add("B")
	a.owned = map[string][]int32{"a": {0, 1}, "b": {0, 1}}
	a.gen = 5
	b.owned = map[string][]int32{"a": {1}, "b": {1}} // stale
	b.gen = 3
	first, revoked := g.round()
	require.True(t, revoked)
	require.Equal(t, map[string][]int32{"a": {0}, "b": {0}}, first["A"])
	require.Empty(t, first["B"])
	second, _ := g.round()
	require.Equal(t, map[string][]int32{"a": {1}, "b": {1}}, second["B"])
}

// TestTaskBalancerUnequalCounts: topics of different partition counts;
// task p holds partition p of each topic that has it.
func TestTaskBalancerUnequalCounts(t *testing.T) {
	g := newSimGroup(t, map[string]int32{"a": 6, "b": 3})
	g.add("A")
	g.add("B")
	g.add("C")
	assigned, _ := g.round()
	require.Equal(t, map[string][]int32{"a": {0, 1}, "b": {0, 1}}, assigned["A"])
	require.Equal(t, map[string][]int32{"a": {2, 3}, "b": {2}}, assigned["B"])
	require.Equal(t, map[string][]int32{"a": {4, 5}}, assigned["C"])
	g.checkSettled()
}

// TestTaskBalancerMixedSubscriptions: a member that does not subscribe to
// a topic gets none of it; every partition is still assigned.
func TestTaskBalancerMixedSubscriptions(t *testing.T) {
	topics := equalTopics(4, "a", "b")
	var members []kmsg.JoinGroupResponseMember
	for _, m := range []struct {
		id     string
		topics []string
	}{{"A", []string{"a", "b"}}, {"B", []string{"a"}}} {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.ProtocolMetadata = taskBalancer{}.JoinGroupMetadata(m.topics, nil, 1)
		members = append(members, jm)
	}
	assigned, _ := balanceOnce(t, members, topics)
	require.Equal(t, []int32{0, 1}, assigned["A"]["a"])
	require.Equal(t, []int32{0, 1, 2, 3}, assigned["A"]["b"])
	require.Equal(t, map[string][]int32{"a": {2, 3}}, assigned["B"])
}

// TestTaskBalancerRandom: random joins and leaves (dynamic and static
// members), checking in every round that nothing is given while another
// member owns it and tasks are whole, and after each change that the group
// settles balanced with only the needed moves.
func TestTaskBalancerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for c := range 60 {
		n := int32(1 + rng.IntN(24))
		ntopics := 1 + rng.IntN(3)
		var names []string
		for i := range ntopics {
			names = append(names, fmt.Sprintf("t%d", i))
		}
		t.Run(fmt.Sprintf("case%d-%dtasks-%dtopics", c, n, ntopics), func(t *testing.T) {
			g := newSimGroup(t, equalTopics(n, names...))
			next := 0
			join := func() {
				m := g.add(fmt.Sprintf("m%03d", next))
				if rng.IntN(3) == 0 {
					m.inst = kmsg.StringPtr(fmt.Sprintf("i%03d", 999-next))
				}
				next++
			}
			join()
			owners := g.settle()
			for range 25 {
				before := owners
				m := len(g.members)
				switch {
				case m > 1 && rng.IntN(2) == 0:
					leaving := g.members[rng.IntN(m)].id
					var its int
					for _, o := range before {
						if o == leaving {
							its++
						}
					}
					g.remove(leaving)
					owners = g.settle()
					got, _ := moved(before, owners)
					require.Equal(t, its, got, "leave of %s", leaving)
				default:
					join()
					owners = g.settle()
					got, _ := moved(before, owners)
					require.Equal(t, int(n)/(m+1), got, "join")
				}
			}
		})
	}
}

// TestTaskBalancerSplitTaskWithheldWhole: a task found split between two
// members (A owns a/1, B owns b/1) goes to B; AdjustCooperative withholds
// a/1 (A revokes it), and B must then not keep b/1 alone either: it
// revokes it too, and gets the whole task in the next round.
func TestTaskBalancerSplitTaskWithheldWhole(t *testing.T) {
	g := newSimGroup(t, equalTopics(2, "a", "b"))
	a, b := g.add("A"), g.add("B")
	a.owned = map[string][]int32{"a": {0, 1}}
	a.gen = 5
	b.owned = map[string][]int32{"b": {1}}
	b.gen = 5
	first, revoked := g.round() // round checks tasks are whole
	require.True(t, revoked)
	require.Equal(t, map[string][]int32{"a": {0}, "b": {0}}, first["A"])
	require.Empty(t, first["B"])
	second, _ := g.round()
	require.Equal(t, map[string][]int32{"a": {1}, "b": {1}}, second["B"])
	g.settle()
}
