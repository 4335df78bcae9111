package admin

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/topology"
)

// joinTopology reads two co-partitioned sources, clicks and views, counts
// both per key in one store and writes the counts.
func joinTopology(t testing.TB) *topology.Topology {
	t.Helper()
	b := topology.NewBuilder()
	clicks := topology.Source(b, "clicks", "clicks", topology.String(), topology.String())
	views := topology.Source(b, "views", "views", topology.String(), topology.String())
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "counts", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		if err := counts.Put(ctx, r.Key, n+1); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n+1)
	}, topology.Parents(clicks.Name(), views.Name()), topology.Stores("counts"))
	top, err := b.Build()
	require.NoError(t, err)
	return top
}

func TestStageOfEverySource(t *testing.T) {
	s := StageOf(joinTopology(t), "join", "join-dlq")
	require.Equal(t, Stage{
		Group:      "join",
		Inputs:     []string{"clicks", "views"},
		Outputs:    []string{"counts", "join-dlq"},
		Changelogs: []string{"join-counts-changelog"},
	}, s)
	require.Equal(t, []string{"counts"}, StageOf(joinTopology(t), "join", "").Outputs, "no dead-letter topic")

	p := Pipeline{Stages: []Stage{s}}
	require.Equal(t, []string{"clicks", "views", "counts", "join-dlq", "join-counts-changelog"}, p.Topics())
	require.Equal(t, []string{"clicks", "views"}, p.Inputs())
	require.Equal(t, "clicks", p.inputOf("clicks"), "the first external input is its own reference")
	require.Equal(t, "clicks", p.inputOf("views"), "a second input must be co-partitioned with the first")
	require.Equal(t, "clicks", p.inputOf("join-counts-changelog"))
	require.Equal(t, "input", p.role("views"))
}

// OrderPipeline is the reference application's pipeline (examples/orders)
// as the exactly command describes it: the order service, then the
// payment stage reading its events. Empty groups are the defaults, after
// prefix.
func OrderPipeline(prefix, orderGroup, paymentGroup string) Pipeline {
	if orderGroup == "" {
		orderGroup = prefix + orders.DefaultOrderGroup
	}
	if paymentGroup == "" {
		paymentGroup = prefix + orders.DefaultPaymentGroup
	}
	ts := orders.TopicsWithPrefix(prefix)
	ot, err := orders.OrderTopologyFor(ts)
	if err != nil {
		panic(err)
	}
	pt, err := orders.PaymentTopologyFor(ts)
	if err != nil {
		panic(err)
	}
	return Pipeline{Stages: []Stage{StageOf(ot, orderGroup, ts.DLQ), StageOf(pt, paymentGroup, ts.PaymentsDLQ)}}
}

// TestStageOfTheOrderApplication holds what StageOf reads from the
// reference application's topologies to the topics written out.
func TestStageOfTheOrderApplication(t *testing.T) {
	for _, prefix := range []string{"", "x-"} {
		ts := orders.TopicsWithPrefix(prefix)
		og, pg := prefix+orders.DefaultOrderGroup, prefix+orders.DefaultPaymentGroup
		want := Pipeline{Stages: []Stage{
			{
				Group:      og,
				Inputs:     []string{ts.Orders},
				Outputs:    []string{ts.Events, ts.DLQ},
				Changelogs: changelogs(og, orders.OrderStores()...),
			},
			{
				Group:      pg,
				Inputs:     []string{ts.Events},
				Outputs:    []string{ts.Payments, ts.PaymentsDLQ},
				Changelogs: changelogs(pg, orders.StorePayments),
			},
		}}
		require.Equal(t, want, OrderPipeline(prefix, "", ""), "prefix %q", prefix)
	}
}

// TestCoPartitionedInputs provisions a two-source stage: created topics
// take the first input's count; a second input with another count is a
// mismatch CheckTopics names and a critical finding of the doctor, which
// measures the group's lag on both inputs.
func TestCoPartitionedInputs(t *testing.T) {
	t.Parallel()
	_, cl, adm := newCluster(t)
	p := Pipeline{Stages: []Stage{StageOf(joinTopology(t), "join", "join-dlq")}}
	cfg := TopicsConfig{Partitions: 4, ReplicationFactor: -1}

	r, err := CreateTopics(ctxT(t), cl, p, cfg)
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Mismatches)
	for _, st := range r.Topics {
		require.EqualValues(t, 4, st.Partitions, st.Topic)
	}

	produce(t, cl, "clicks", 0, 3)
	produce(t, cl, "views", 2, 5)
	commit(t, adm, "join", "clicks", map[int32]int64{0: 3})
	commit(t, adm, "join", "views", map[int32]int64{2: 1})
	doc := doctorRun(t, cl, p, DoctorOptions{})
	g := groupOf(doc, "join")
	require.Equal(t, []string{"clicks", "views"}, g.Inputs)
	require.Len(t, g.Lag, 8, "four partitions of each input")
	require.Equal(t, PartitionLag{Topic: "views", Partition: 2, Committed: 1, LogStart: 0, LastStable: 5, HighWatermark: 5, Lag: 4, Pending: 4}, g.Lag[6])
	require.EqualValues(t, 4, g.TotalLag)
	lag := findingsOf(doc, CheckLag)
	require.Len(t, lag, 1, "%v", doc.Findings)
	require.Contains(t, lag[0].Message, "4 records wait in views:")

	// A second input unlike the first: the stage would refuse to start.
	_, cl2, adm2 := newCluster(t)
	mkTopic(t, adm2, "clicks", 4, -1)
	mkTopic(t, adm2, "views", 2, -1)
	r, err = CreateTopics(ctxT(t), cl2, p, cfg)
	require.NoError(t, err)
	require.Equal(t, []string{"counts", "join-dlq", "join-counts-changelog"}, r.Created)
	require.Equal(t, []string{"views partitions"}, kinds(r.Mismatches))
	require.Contains(t, r.Mismatches[0].Message, "has 2 partitions but clicks, read by the same stage, has 4")
	i := slices.IndexFunc(r.Topics, func(s TopicState) bool { return s.Topic == "join-counts-changelog" })
	require.EqualValues(t, 4, r.Topics[i].Partitions, "created with the first input's count")
	doc = doctorRun(t, cl2, p, DoctorOptions{})
	require.Equal(t, Critical, doc.Severity, "%v", doc.Findings)
	prov := findingsOf(doc, CheckProvisioning)
	require.Len(t, prov, 1, "%v", doc.Findings)
	require.Equal(t, "views", prov[0].Subject)
	require.Contains(t, prov[0].Message, "the stage refuses to start")
}

// TestStageOfARepartitionedTopology: a repartition topic is internal: named
// as the processor names it (<group>-<name>-repartition), consumed after
// the external inputs, written as an output (so `topics create` makes it
// with the input's count and no check calls it external), and purged, which
// needs DELETE on it.
//
// Regression: StageOf listed it under its unprefixed name as an external
// input, so `topics check` and the doctor expected a topic nobody creates.
func TestStageOfARepartitionedTopology(t *testing.T) {
	b := topology.NewBuilder()
	lines := topology.Source(b, "lines", "lines", topology.String(), topology.String())
	byWord := topology.Repartition(b, "by-word", topology.String(), topology.String(), topology.Parents("split"))
	topology.Node(b, "split", func(c *topology.Call, r topology.Record[string, string]) error {
		return byWord.Send(c, r.Value, r.Value)
	}, topology.Parents(lines.Name()))
	counts := topology.Store(b, "counts", topology.String(), topology.Int64())
	out := topology.Sink(b, "out", "word-counts", topology.String(), topology.Int64(), topology.Parents("count"))
	topology.Node(b, "count", func(c *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(c, r.Key)
		if err != nil {
			return err
		}
		if err := counts.Put(c, r.Key, n+1); err != nil {
			return err
		}
		return out.Send(c, r.Key, n+1)
	}, topology.Parents(byWord.Name()), topology.Stores("counts"))
	top, err := b.Build()
	require.NoError(t, err)

	s := StageOf(top, "wc", "wc-dlq")
	require.Equal(t, Stage{
		Group:        "wc",
		Inputs:       []string{"lines", "wc-by-word-repartition"},
		Outputs:      []string{"word-counts", "wc-by-word-repartition", "wc-dlq"},
		Changelogs:   []string{"wc-counts-changelog"},
		Repartitions: []string{"wc-by-word-repartition"},
	}, s)
	p := Pipeline{Stages: []Stage{s}}
	require.Equal(t, "repartition", p.role("wc-by-word-repartition"), "created by the stage, not an external input")
	require.Equal(t, "lines", p.inputOf("wc-by-word-repartition"), "the input's partition count")

	acls, err := RequiredACLs(p, RoleInstance, ACLOptions{})
	require.NoError(t, err)
	var ops []string
	for _, a := range acls {
		if a.Name == "wc-by-word-repartition" {
			ops = append(ops, a.Operation.String())
		}
	}
	require.ElementsMatch(t, []string{"READ", "WRITE", "DELETE"}, ops)
}
