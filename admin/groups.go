package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groups describes each stage's group, computes its lag per partition of
// every input to the last stable offset and grades it.
func (d *doctor) groups(ctx context.Context) {
	described, err := d.adm.DescribeGroups(ctx, d.p.Groups()...)
	for _, s := range d.p.Stages {
		g := Group{Name: s.Group, Inputs: slices.Clone(s.Inputs), State: "Dead", Members: []Member{}, Lag: []PartitionLag{}}
		if _, ok := described[s.Group]; ok {
			d.describeGroup(ctx, &g, described)
		} else {
			msg := "no answer"
			if err != nil {
				msg = err.Error()
			}
			g.State, g.Error = "Unknown", "describing the group: "+msg
		}
		for _, in := range g.Inputs {
			if err := d.lag(ctx, &g, in); err != nil {
				g.Error = strings.TrimPrefix(g.Error+"; "+err.Error(), "; ")
			}
		}
		for _, l := range g.Lag {
			g.TotalLag += max(0, l.Waiting())
		}
		d.r.Groups = append(d.r.Groups, g)
		d.groupFindings(g)
	}
}

// describeGroup fills state and members, from the classic protocol's
// DescribeGroups or, for a KIP-848 group, ConsumerGroupDescribe.
func (d *doctor) describeGroup(ctx context.Context, g *Group, described kadm.DescribedGroups) {
	dg, ok := described[g.Name]
	if ok && dg.Err == nil && dg.State != "Dead" {
		g.State, g.Protocol = dg.State, dg.Protocol
		for _, m := range dg.Members {
			mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, InstanceID: deref(m.InstanceID), Assigned: map[string][]int32{}}
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range c.Topics {
					mem.assign(g.Inputs, t.Topic, t.Partitions)
				}
			}
			g.Members = append(g.Members, mem)
		}
		return
	}
	if ok && dg.Err != nil && !errors.Is(dg.Err, kerr.GroupIDNotFound) {
		g.State, g.Error = "Unknown", "describing the group: "+dg.Err.Error()
		return
	}
	// Not a classic group: maybe a KIP-848 consumer group.
	cgs, err := d.adm.DescribeConsumerGroups(ctx, g.Name)
	cg, ok := cgs[g.Name]
	if err != nil || !ok || cg.Err != nil || cg.State == "Dead" {
		return // does not exist (Dead)
	}
	g.State, g.Protocol = cg.State, cg.AssignorName
	for _, m := range cg.Members {
		mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, InstanceID: deref(m.InstanceID), Assigned: map[string][]int32{}}
		for t, ps := range m.Assignment {
			for p := range ps {
				mem.assign(g.Inputs, t, []int32{p})
			}
		}
		g.Members = append(g.Members, mem)
	}
}

// assign records partitions of topic as assigned to m if topic is one of
// inputs, keeping them sorted.
func (m *Member) assign(inputs []string, topic string, partitions []int32) {
	if !slices.Contains(inputs, topic) || len(partitions) == 0 {
		return
	}
	m.Assigned[topic] = append(m.Assigned[topic], partitions...)
	slices.Sort(m.Assigned[topic])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// lag appends to g.Lag the partitions of g's input topic in and counts,
// record by record, the small lags.
func (d *doctor) lag(ctx context.Context, g *Group, in string) error {
	n, ok := d.counts[in]
	if !ok {
		return nil // the input is missing; the topics check says so
	}
	commits, err := d.adm.FetchOffsetsForTopics(ctx, g.Name, in)
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		commits = nil // never committed
	case err != nil && len(commits) == 0:
		return fmt.Errorf("fetching committed offsets of %s: %w", in, err)
	}
	owner := map[int32]string{}
	for _, m := range g.Members {
		for _, p := range m.Assigned[in] {
			owner[p] = m.ID
		}
	}
	probe := map[int32][2]int64{}
	first := len(g.Lag)
	for p := range n {
		l := PartitionLag{Topic: in, Partition: p, Committed: -1, LogStart: -1, LastStable: -1, HighWatermark: -1, Lag: -1, Pending: -1, Member: owner[p]}
		if c, ok := commits.Lookup(in, p); ok && c.Err == nil {
			l.Committed = c.At
		}
		if s, ok := d.start.Lookup(in, p); ok && s.Err == nil {
			l.LogStart = s.Offset
		}
		if pt, ok := d.partition(in, p); ok {
			l.LastStable, l.HighWatermark = pt.LastStable, pt.HighWatermark
		}
		if from := l.from(); from >= 0 && l.LastStable >= 0 {
			l.Lag = max(0, l.LastStable-from)
			switch {
			case l.Lag == 0:
				l.Pending = 0
			case l.Lag <= d.o.ProbeLimit:
				probe[p] = [2]int64{from, l.LastStable}
			}
		}
		g.Lag = append(g.Lag, l)
	}
	if len(probe) > 0 {
		counted, err := countVisible(ctx, d.cl, in, probe, d.o.ProbeTimeout)
		if err != nil {
			return err
		}
		for i := first; i < len(g.Lag); i++ {
			if c, ok := counted[g.Lag[i].Partition]; ok {
				g.Lag[i].Pending = c
			}
		}
	}
	return nil
}

// from is where the group reads next: its commit, or the log start
// without one (the runtime starts there), never below the log start.
func (l PartitionLag) from() int64 {
	if l.Committed < 0 || l.LogStart > l.Committed {
		return l.LogStart
	}
	return l.Committed
}

// groupFindings grades one group.
func (d *doctor) groupFindings(g Group) {
	if g.Error != "" {
		d.r.add(Warning, CheckGroups, g.Name, "%s", g.Error)
	}
	committed := slices.ContainsFunc(g.Lag, func(l PartitionLag) bool { return l.Committed >= 0 })
	for _, l := range g.Lag {
		switch {
		case l.Committed >= 0 && l.HighWatermark >= 0 && l.Committed > l.HighWatermark:
			d.r.add(Warning, CheckGroups, tp(l.Topic, l.Partition), "group %s committed offset %d beyond the high watermark %d: the topic was recreated or truncated", g.Name, l.Committed, l.HighWatermark)
		case l.Committed >= 0 && l.LogStart > l.Committed:
			d.r.add(Warning, CheckGroups, tp(l.Topic, l.Partition), "group %s committed offset %d below the log start %d: records were deleted before the group consumed them", g.Name, l.Committed, l.LogStart)
		}
	}
	switch {
	case g.State == "Dead" && !committed:
		msg := "group does not exist and has no committed offsets: the stage never ran, or its offsets expired (offsets.retention.minutes)"
		if g.TotalLag > 0 {
			msg += fmt.Sprintf("; %d records wait in %s", g.TotalLag, g.waitingIn())
		}
		d.r.add(Warning, CheckGroups, g.Name, "%s", msg)
	case len(g.Members) == 0 && g.TotalLag > 0:
		d.r.add(Warning, CheckLag, g.Name, "no members (state %s) and %d records wait in %s: the stage is stopped", g.State, g.TotalLag, g.waitingIn())
	case g.TotalLag > d.o.MaxLag:
		d.r.add(Warning, CheckLag, g.Name, "%d records wait in %s (more than %d)", g.TotalLag, g.waitingIn(), d.o.MaxLag)
	}
}

// waitingIn names the inputs where records wait for g, comma-separated:
// those with a positive lag, or all inputs when none has.
func (g Group) waitingIn() string {
	var in []string
	for _, l := range g.Lag {
		if l.Waiting() > 0 && !slices.Contains(in, l.Topic) {
			in = append(in, l.Topic)
		}
	}
	if len(in) == 0 {
		in = g.Inputs
	}
	return strings.Join(in, ", ")
}
