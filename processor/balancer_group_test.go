package processor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTaskBalancerProtocolChoice runs real kgo group members on a kfake
// broker: members all offering [task, range] (this release) use the task
// protocol, and split across both topics by task; a member offering only
// range (a release before it, during a rolling upgrade) makes the group
// fall back to range instead of failing to join.
func TestTaskBalancerProtocolChoice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second []kgo.GroupBalancer
		want   string
	}{
		{"all-task", []kgo.GroupBalancer{newTaskBalancer(), kgo.RangeBalancer()}, taskProtocol},
		{"rolling-upgrade", []kgo.GroupBalancer{kgo.RangeBalancer()}, "range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "rep"))
			require.NoError(t, err)
			t.Cleanup(c.Close)
			brokers := c.ListenAddrs()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			member := func(bals []kgo.GroupBalancer) {
				cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("g"),
					kgo.ConsumeTopics("in", "rep"), kgo.Balancers(bals...))
				require.NoError(t, err)
				t.Cleanup(cl.Close)
				go func() {
					for ctx.Err() == nil {
						cl.PollFetches(ctx)
					}
				}()
			}
			member([]kgo.GroupBalancer{newTaskBalancer(), kgo.RangeBalancer()})
			member(tc.second)

			adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
			require.NoError(t, err)
			defer adm.Close()
			var last string
			settled := func() bool {
				groups, err := adm.DescribeGroups(context.Background(), "g")
				if err != nil {
					return false
				}
				g := groups["g"]
				last = g.Protocol + " " + g.State
				if g.State != "Stable" || len(g.Members) != 2 {
					return false
				}
				total := 0
				for _, m := range g.Members {
					ca, ok := m.Assigned.AsConsumer()
					if !ok {
						return false
					}
					parts := map[string][]int32{}
					for _, tp := range ca.Topics {
						parts[tp.Topic] = tp.Partitions
						total += len(tp.Partitions)
					}
					require.ElementsMatch(t, parts["in"], parts["rep"], "partition p of both topics on one member")
				}
				return total == 8 && g.Protocol == tc.want
			}
			for deadline := time.Now().Add(30 * time.Second); !settled(); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("group not settled on %s with both topics assigned: last %s", tc.want, last)
				}
			}
		})
	}
}
