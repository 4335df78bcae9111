package topology_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// shopTopology is a representative graph: two sources joined into a store,
// a pass-through copy, a chain of processors and sinks sharing a topic.
func shopTopology(t testing.TB) *topology.Topology {
	t.Helper()
	str := topology.String()
	b := topology.NewBuilder()
	topology.Source(b, "orders", "orders", str, topology.JSON[order]())
	topology.Source(b, "payments", "payments", str, topology.JSON[order]())
	topology.Source(b, "raw", "raw-events", topology.Bytes(), topology.Bytes())
	topology.Store(b, "ledger", str, topology.JSON[total]())
	topology.Store(b, "counts", str, topology.Int64())
	topology.Node(b, "join", noop[string, order], topology.Parents("orders", "payments"), topology.Stores("ledger"))
	topology.Node(b, "count", noop[string, total], topology.Parents("join"), topology.Stores("counts", "ledger"))
	topology.Node(b, "audit", noop[string, order], topology.Parents("orders"))
	topology.Sink(b, "totals", "customer-totals", str, topology.JSON[total](), topology.Parents("count"))
	topology.Sink(b, "audit-log", "audit", str, topology.JSON[order](), topology.Parents("audit", "join"))
	topology.Sink(b, "audit-raw", "audit", topology.Bytes(), topology.Bytes(), topology.Parents("raw"))
	return mustBuild(t, b)
}

func TestAccessors(t *testing.T) {
	t.Parallel()
	top := shopTopology(t)

	require.Equal(t, []topology.SourceInfo{
		{Name: "orders", Topic: "orders"},
		{Name: "payments", Topic: "payments"},
		{Name: "raw", Topic: "raw-events"},
	}, top.Sources())
	require.Equal(t, []string{"orders", "payments", "raw-events"}, top.SourceTopics())
	require.Equal(t, []string{"customer-totals", "audit"}, top.SinkTopics(), "sink topics are deduplicated in declaration order")
	require.Equal(t, []string{"ledger", "counts"}, top.StoreNames())

	tests := []struct {
		store string
		want  []string
	}{
		{store: "ledger", want: []string{"orders", "payments"}},
		{store: "counts", want: []string{"orders", "payments"}},
		{store: "unused", want: nil},
		{store: "no-such-store", want: nil},
	}
	for _, tt := range tests {
		t.Run("StoreSources/"+tt.store, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, top.StoreSources(tt.store))
		})
	}
}

func TestStoreSourcesIsACopy(t *testing.T) {
	t.Parallel()
	top := shopTopology(t)
	got := top.StoreSources("ledger")
	got[0] = "mutated"
	require.Equal(t, []string{"orders", "payments"}, top.StoreSources("ledger"))
}

func TestAccessorsEmpty(t *testing.T) {
	t.Parallel()
	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	top := mustBuild(t, b)
	require.Equal(t, []string{"in"}, top.SourceTopics())
	require.Empty(t, top.SinkTopics())
	require.Empty(t, top.StoreNames())
}

// TestDescribe compares Describe with testdata/describe.golden. Run
// `go test ./topology/ -run TestDescribe -update` to rewrite it after an
// intended change, and review the diff.
func TestDescribe(t *testing.T) {
	t.Parallel()
	got := shopTopology(t).Describe()
	path := filepath.Join("testdata", "describe.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create the golden file")
	require.Equal(t, string(want), got)
}

func TestDescribeIsStable(t *testing.T) {
	t.Parallel()
	require.Equal(t, shopTopology(t).Describe(), shopTopology(t).Describe())
}
