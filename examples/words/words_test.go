package words_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/examples/words"
	"github.com/exactly-stream/exactly/topology"
	"github.com/exactly-stream/exactly/topologytest"
)

func newDriver(t *testing.T) *topologytest.Driver {
	topo, err := words.Topology("")
	require.NoError(t, err)
	return topologytest.New(t, topo, topologytest.Options{Application: words.Group, Partitions: 4})
}

// TestCountsAcrossPartitions pipes lines of documents that hash to
// different partitions: a word's count is its total over all of them, so
// its occurrences met in one task through the repartition topic (counting
// per input partition would restart at 1 in each).
func TestCountsAcrossPartitions(t *testing.T) {
	d := newDriver(t)
	in := topologytest.Input(d, words.TopicLines, topology.String(), topology.String())
	docs := []string{"doc-a", "doc-b", "doc-c", "doc-d", "doc-e", "doc-f"}
	parts := map[int32]bool{}
	for _, doc := range docs {
		parts[d.Partition([]byte(doc))] = true
		in.Pipe(doc, "The cat, the dog.")
	}
	require.Greater(t, len(parts), 1, "the documents must be on several partitions")

	out := topologytest.Output(d, words.TopicCounts, topology.String(), topology.Int64())
	seqs := map[string][]int64{}
	for _, r := range out.ReadAll() {
		seqs[r.Key] = append(seqs[r.Key], r.Value)
	}
	n := int64(len(docs))
	want := map[string][]int64{"the": seq(2 * n), "cat": seq(n), "dog": seq(n)}
	require.Equal(t, want, seqs)

	rep := d.Produced(words.RepartitionTopic(words.Group))
	require.Len(t, rep, 4*len(docs), "every word goes through the repartition topic")
	for _, r := range rep {
		require.Equal(t, d.Partition(r.Key), r.Partition, "a repartition record is in its word's partition")
	}
	require.Empty(t, d.DeadLetters())
}

// TestNotUTF8IsDeadLettered: a line that is not text goes to the
// dead-letter topic, unchanged, and counts nothing; the next line counts.
func TestNotUTF8IsDeadLettered(t *testing.T) {
	d := newDriver(t)
	d.PipeRaw(words.TopicLines, topologytest.Record{Key: []byte("doc"), Value: []byte("bad \xff word")})
	topologytest.Input(d, words.TopicLines, topology.String(), topology.String()).Pipe("doc", "word")

	dl := d.DeadLetters()
	require.Len(t, dl, 1)
	require.Equal(t, "bad \xff word", string(dl[0].Value))
	require.Equal(t, words.Group+"-dlq", dl[0].Topic)
	require.Empty(t, d.Produced(words.RepartitionTopic(words.Group))[1:], "the bad line sent nothing on")
	got := topologytest.Output(d, words.TopicCounts, topology.String(), topology.Int64()).ReadAll()
	require.Len(t, got, 1)
	require.Equal(t, "word", got[0].Key)
	require.Equal(t, int64(1), got[0].Value, "the dead-lettered line's \"word\" is not counted")
}

// TestTopologyNames pins the names a deployed application depends on: the
// repartition topic and the count's store (so its changelog).
func TestTopologyNames(t *testing.T) {
	topo, err := words.Topology("p-")
	require.NoError(t, err)
	topo, err = topo.ForApplication("p-" + words.Group)
	require.NoError(t, err)
	var reps []string
	for _, r := range topo.Repartitions() {
		reps = append(reps, r.Topic)
	}
	require.Equal(t, []string{words.RepartitionTopic("p-" + words.Group)}, reps)
	require.Equal(t, []string{words.StoreCounts}, topo.StoreNames())
}

// seq returns 1..n.
func seq(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}
