package processor

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskProtocol is the group protocol name of the task balancer. It differs
// from kgo's names, so the broker only picks it when every member offers it.
const taskProtocol = "exactly-task-cooperative"

// taskBalancer is a cooperative, sticky kgo.GroupBalancer whose unit is a
// task: partition p of every subscribed topic (source and repartition
// topics). All partitions of a task go to one member, so a member never
// holds part of a task whose other part another member processes.
//
//   - Balanced: members' task counts differ by at most one.
//   - Sticky: a task stays with the member that owns it (its
//     OwnedPartitions in the join metadata) unless balance needs it
//     elsewhere; the members that own the most keep the larger quotas, so
//     the number of tasks moved is the least any balanced plan needs. A
//     joining member takes tasks from those over their quota; a leaving
//     member's tasks go to those under it.
//   - Cooperative (KIP-429): a task moving from X to Y is left out of both
//     plans in that rebalance; X revokes it and rejoins, and the next
//     rebalance gives it to Y. kgo's BalancePlan.AdjustCooperative does
//     that per partition, then withhold keeps a task whole.
//   - Deterministic: members are ordered by instance ID, then member ID
//     (kgo's order), and every tie is broken by that order or the task
//     number.
//
// Why cooperative and sticky: a task that moves costs its new owner a
// restore of the task's stores from their changelogs, and an eager
// rebalance stops every task on every membership change.
//
// Topics with different partition counts (the processor refuses that at
// start; a group can see it during a topology change): tasks are 0..max-1
// and task p holds partition p of each topic that has one; balance counts
// tasks, not partitions. A member that does not subscribe to a topic gets
// none of its partitions; a task partition whose owner does not subscribe
// to its topic goes to that topic's subscriber with the fewest of its
// partitions (the task is split only while subscriptions differ).
//
// Conflicting claims (a member rejoining with a stale assignment): the
// claim of the highest generation wins, ties go to the first member in
// order; the loser's claim counts as unowned for stickiness, and for the
// cooperative rule any claim counts (revoking more is always safe).
type taskBalancer struct{}

func newTaskBalancer() kgo.GroupBalancer { return taskBalancer{} }

func (taskBalancer) ProtocolName() string { return taskProtocol }

func (taskBalancer) IsCooperative() bool { return true }

// JoinGroupMetadata is the consumer protocol's metadata with the partitions
// this member owns and its generation, as kgo's cooperative-sticky sends.
func (taskBalancer) JoinGroupMetadata(topics []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = topics
	meta.Generation = generation
	for t, ps := range current {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = t
		owned.Partitions = ps
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	// Sorted, so an unchanged assignment gives identical metadata (the
	// broker compares it to decide whether a rebalance is needed).
	sort.Slice(meta.OwnedPartitions, func(i, j int) bool {
		return meta.OwnedPartitions[i].Topic < meta.OwnedPartitions[j].Topic
	})
	return meta.AppendTo(nil)
}

func (taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (tb taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	b, err := kgo.NewConsumerBalancer(tb, members)
	if err != nil {
		return nil, nil, err
	}
	return b, b.MemberTopics(), nil
}

// taskMember is one group member as the balancer sees it.
type taskMember struct {
	m      *kmsg.JoinGroupResponseMember
	meta   *kmsg.ConsumerMemberMetadata
	subs   map[string]bool
	owned  []int32 // tasks it owns and keeps a claim to, ascending
	quota  int
	tasks  []int32 // planned
	number int     // position in the member order
}

// Balance plans the assignment; see taskBalancer.
func (taskBalancer) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := b.NewPlan()
	var members []*taskMember
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		tm := &taskMember{m: m, meta: meta, subs: make(map[string]bool)}
		for _, t := range meta.Topics {
			if _, ok := topics[t]; ok {
				tm.subs[t] = true
			}
		}
		if len(tm.subs) > 0 {
			members = append(members, tm)
		}
	})
	if len(members) == 0 {
		return plan
	}
	// kgo sorts members so; sorting again keeps the plan independent of
	// the input order (tests, and any caller that does not sort).
	sort.SliceStable(members, func(i, j int) bool { return memberLess(members[i].m, members[j].m) })
	for i, tm := range members {
		tm.number = i
	}
	var ntasks int32
	for _, n := range topics {
		ntasks = max(ntasks, n)
	}

	// The current owner of each task: the highest-generation claim on any
	// of its partitions, the first member on a tie.
	owner := make(map[int32]*taskMember)
	ownerGen := make(map[int32]int32)
	for _, tm := range members {
		for _, op := range tm.meta.OwnedPartitions {
			n, ok := topics[op.Topic]
			if !ok || !tm.subs[op.Topic] {
				continue
			}
			for _, p := range op.Partitions {
				if p < 0 || p >= n {
					continue
				}
				if cur, ok := owner[p]; !ok || tm.meta.Generation > ownerGen[p] {
					owner[p] = tm
					ownerGen[p] = tm.meta.Generation
				} else if cur != tm && tm.meta.Generation == ownerGen[p] && tm.number < cur.number {
					owner[p] = tm
				}
			}
		}
	}
	for p := int32(0); p < ntasks; p++ {
		if tm, ok := owner[p]; ok {
			tm.owned = append(tm.owned, p)
		}
	}

	// Quotas: the len(tasks)%len(members) members owning the most get one
	// more; keeping the most owned tasks moves the fewest.
	byOwned := slices.Clone(members)
	sort.SliceStable(byOwned, func(i, j int) bool { return len(byOwned[i].owned) > len(byOwned[j].owned) })
	base, extra := int(ntasks)/len(members), int(ntasks)%len(members)
	for i, tm := range byOwned {
		tm.quota = base
		if i < extra {
			tm.quota++
		}
	}
	var free []int32
	for _, tm := range members {
		keep := min(len(tm.owned), tm.quota)
		tm.tasks = append(tm.tasks, tm.owned[:keep]...)
		free = append(free, tm.owned[keep:]...)
	}
	for p := int32(0); p < ntasks; p++ {
		if _, ok := owner[p]; !ok {
			free = append(free, p)
		}
	}
	slices.Sort(free)
	for _, tm := range members {
		for len(tm.tasks) < tm.quota && len(free) > 0 {
			tm.tasks = append(tm.tasks, free[0])
			free = free[1:]
		}
	}

	// Partitions of the planned tasks; a topic the task's owner does not
	// subscribe to goes to its subscriber with the fewest of it.
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	parts := make(map[*taskMember]map[int32][]string) // member => task => topics planned
	for _, tm := range members {
		parts[tm] = make(map[int32][]string)
		slices.Sort(tm.tasks)
	}
	for _, t := range names {
		n := topics[t]
		count := make(map[*taskMember]int)
		var fallback []int32
		for _, tm := range members {
			for _, p := range tm.tasks {
				if p >= n {
					continue
				}
				if tm.subs[t] {
					plan.AddPartition(tm.m, t, p)
					parts[tm][p] = append(parts[tm][p], t)
					count[tm]++
				} else {
					fallback = append(fallback, p)
				}
			}
		}
		slices.Sort(fallback)
		for _, p := range fallback {
			var to *taskMember
			for _, tm := range members {
				if tm.subs[t] && (to == nil || count[tm] < count[to]) {
					to = tm
				}
			}
			plan.AddPartition(to.m, t, p)
			count[to]++
		}
	}

	plan.AdjustCooperative(b)
	withhold(plan, members, parts)
	return plan
}

// withhold completes AdjustCooperative for tasks: when it left out part of
// a task planned for a member (that part is being revoked from another),
// the member gets none of the task this round, so it never holds a task
// partly. What it already owned of the task it revokes too; every task so
// withheld has a partition another member revokes, so that member rejoins
// and the next rebalance assigns the task whole.
func withhold(plan *kgo.BalancePlan, members []*taskMember, parts map[*taskMember]map[int32][]string) {
	m := plan.AsMemberIDMap()
	for _, tm := range members {
		got := m[tm.m.MemberID]
		for p, ts := range parts[tm] {
			if !slices.ContainsFunc(ts, func(t string) bool { return !slices.Contains(got[t], p) }) {
				continue // the whole task is there
			}
			for _, t := range ts {
				if ps := slices.DeleteFunc(got[t], func(q int32) bool { return q == p }); len(ps) > 0 {
					got[t] = ps
				} else {
					delete(got, t)
				}
			}
		}
	}
}

// memberLess is kgo's member order: members with an instance ID first, by
// it, then by member ID.
func memberLess(l, r *kmsg.JoinGroupResponseMember) bool {
	switch {
	case l.InstanceID != nil && r.InstanceID != nil:
		if *l.InstanceID != *r.InstanceID {
			return *l.InstanceID < *r.InstanceID
		}
	case l.InstanceID != nil:
		return true
	case r.InstanceID != nil:
		return false
	}
	return l.MemberID < r.MemberID
}
