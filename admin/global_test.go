package admin_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/topology"
)

// A global store's topic is part of the pipeline (checked, readable) but
// not an input: the group does not consume it, and it need not have the
// inputs' partition count.
func TestStageOfGlobalStore(t *testing.T) {
	b := topology.NewBuilder()
	str := topology.String()
	src := topology.Source(b, "orders", "orders", str, str)
	g := topology.GlobalStore(b, "profiles", "profiles", str, str)
	topology.Sink(b, "out", "enriched", str, str, topology.Parents("enrich"))
	topology.Node(b, "enrich", func(*topology.Call, topology.Record[string, string]) error { return nil },
		topology.Parents(src.Name()), topology.Stores(g.Name()))
	topo, err := b.Build()
	require.NoError(t, err)
	s := admin.StageOf(topo, "app", "")
	require.Equal(t, []string{"orders"}, s.Inputs)
	require.Equal(t, []string{"profiles"}, s.Globals)
	require.Empty(t, s.Changelogs)
	p := admin.Pipeline{Stages: []admin.Stage{s}}
	require.Contains(t, p.Topics(), "profiles")
	acls, err := admin.RequiredACLs(p, admin.RoleInstance, admin.ACLOptions{})
	require.NoError(t, err)
	var read bool
	for _, a := range acls {
		if a.Resource == kmsg.ACLResourceTypeTopic && a.Name == "profiles" && a.Operation == kmsg.ACLOperationRead {
			read = true
		}
	}
	require.True(t, read, "an instance reads the global topic: %v", acls)
}
