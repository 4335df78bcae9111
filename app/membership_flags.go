package app

import "github.com/exactly-stream/exactly/processor"

// memberConfig is how run joins its consumer group.
type memberConfig struct {
	static      bool
	leaveOnStop bool
}

// memberFlags declares the flags of group membership.
func memberFlags(fs *flagSet, c *memberConfig) {
	fs.BoolVar(&c.static, "static-membership", true, "join as a static member whose group.instance.id is --instance-id (KIP-345): a restart within --session-timeout gets its partitions back without a rebalance; false: a dynamic member")
	fs.BoolVar(&c.leaveOnStop, "leave-group-on-stop", true, "a static member leaves the group when it stops cleanly, so its partitions move at once (a scale-down); false: they wait for it until --session-timeout (a rolling restart moves nothing)")
}

// options returns the processor options of c.
func (c *memberConfig) options() []processor.Opt {
	return []processor.Opt{processor.StaticMembership(c.static), processor.LeaveGroupOnStop(c.leaveOnStop)}
}
