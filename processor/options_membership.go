package processor

// StaticMembership sets whether the instance joins its group as a static
// member whose group.instance.id is its instance ID (KIP-345; this
// corresponds to the Java group.instance.id). A static member that
// restarts within the session timeout gets its partitions back without a
// rebalance: the other members keep theirs and are not even told, and the
// restarted instance restores every partition it is given, as after any
// start. A member that dies without restarting holds its partitions idle
// until the session timeout, as a dynamic one does.
//
// A second process with the same instance ID takes the member's place in
// the group; the first one is then told FENCED_INSTANCE_ID (its
// transactional ID is fenced as well, so it cannot commit). It rejoins
// once, since the group can also fence a lone member (its own JoinGroup
// applied twice across a coordinator failover), and so fences the second,
// which rejoins once in turn; fenced again within a minute, the first
// stops with ErrFenced.
//
// The default value is true.
func StaticMembership(on bool) Opt { return opt(func(c *cfg) { c.dynamic = !on }) }

// LeaveGroupOnStop sets whether a static member leaves its group when Run
// stops cleanly (its context cancelled, or Close). kgo never leaves the
// group when it closes a static member's client, so the processor then
// removes the member by its instance ID (LeaveGroup, Kafka 2.4+): the group
// rebalances at once and hands its partitions to the other instances, as
// a scale-down wants. Without it, a stopped member keeps its partitions
// until it comes back or the session timeout passes: a rolling restart
// then moves no partition at all, but a scale-down leaves the removed
// instances' partitions idle for the session timeout.
//
// A member that stops on an error does not leave (a twin, ErrFenced, may
// hold the instance ID now); nor does a dynamic member need this: kgo
// leaves for it. The default value is true.
func LeaveGroupOnStop(leave bool) Opt { return opt(func(c *cfg) { c.stayOnStop = !leave }) }

// groupInstanceID returns the group.instance.id this configuration joins
// with, "" for a dynamic member.
func (c *cfg) groupInstanceID() string {
	if c.dynamic {
		return ""
	}
	return c.instanceID
}
