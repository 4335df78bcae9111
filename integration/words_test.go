package integration

import (
	"context"
	be "encoding/binary"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/wordcount"
	"github.com/exactly-stream/exactly/examples/words"
)

// wordsBinary is the race-built command of the words example, built once
// on first use next to the exactly binary.
var wordsBinary struct {
	once sync.Once
	path string
	err  error
}

func wordsBinaryPath(t testing.TB) string {
	t.Helper()
	wordsBinary.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "words")
		build := exec.Command("go", "build", "-race", "-o", path, "../examples/words/cmd/words")
		if out, err := build.CombinedOutput(); err != nil {
			wordsBinary.err = fmt.Errorf("building the words binary: %w\n%s", err, out)
			return
		}
		wordsBinary.path = path
	})
	require.NoError(t, wordsBinary.err)
	return wordsBinary.path
}

// spawnWords starts `words run` as instance id on state directory dir.
func (e *env) spawnWords(id, dir string) *child {
	e.t.Helper()
	c := startChild(e.t, &e.wg, "words instance "+id, id, wordsBinaryPath(e.t), []string{"run", "--brokers", strings.Join(e.brokers, ","),
		"--instance-id", id, "--state-dir", dir, "--topic-prefix", e.prefix,
		"--commit-interval", "100ms", "--max-records", "50",
		"--session-timeout", "6s", "--transaction-timeout", "5s",
		"--log-level", "info", "--log-format", "json"}, e.childEnv())
	c.dir = dir
	return c
}

// wordCounts reads the committed output of the words example: per word,
// the counts in the order written. A topic not created yet reads as empty.
func (e *env) wordCounts() (map[string][]int64, int, error) {
	cl, err := e.client()
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	recs, err := exactlytest.ReadCommitted(context.Background(), cl, e.prefix+words.TopicCounts, exactlytest.ReadOptions{Timeout: time.Minute})
	if err != nil {
		return nil, 0, err
	}
	out, n := make(map[string][]int64), 0
	for _, rs := range recs {
		for _, r := range rs {
			if len(r.Value) != 8 {
				return nil, 0, fmt.Errorf("count of %q: %d bytes, want 8", r.Key, len(r.Value))
			}
			out[string(r.Key)] = append(out[string(r.Key)], int64(be.BigEndian.Uint64(r.Value)))
			n++
		}
	}
	return out, n, nil
}

// TestWordsExactlyOnceAcrossInstances runs the words example (a word count
// across documents: re-keyed by word through a repartition topic, counted
// in a changelogged store) as 3 processes; one is SIGKILLed mid-stream and
// restarted on its state directory. The committed output must be the fold
// of the input: per word the counts 1..n, no gap, no repeat (a count
// emitted twice by a replayed or aborted transaction, or lost, breaks the
// sequence; an aborted record would show as a repeat since it is read with
// read_committed), n the word's occurrences in the valid lines; every line
// that is not UTF-8 dead-lettered once; and the repartition topic created
// by the processor with the input's partition count and purged below what
// was committed (its log start offset advanced).
func TestWordsExactlyOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	group := e.prefix + words.Group
	repartition := words.RepartitionTopic(group)
	resp, err := e.admin.CreateTopic(ctx, partitions, -1, nil, e.prefix+words.TopicLines)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	listed, err := e.admin.ListTopics(ctx, repartition)
	require.NoError(t, err)
	require.False(t, listed.Has(repartition), "the repartition topic must not exist before the first instance starts")

	rng := rand.New(rand.NewPCG(18, 18))
	lines := wcLines(rng, 900, 30)
	var bad int
	for i := 45; i < len(lines); i += 90 {
		lines[i].text = "not \xff text"
		bad++
	}
	want := make(map[string]int64)
	wantN := 0
	for _, l := range lines {
		if l.text == "not \xff text" {
			continue
		}
		for _, w := range wordcount.Words(l.text) {
			want[w]++
			wantN++
		}
	}

	dirs := map[string]string{"a": filepath.Join(e.root, "a"), "b": filepath.Join(e.root, "b"), "c": filepath.Join(e.root, "c")}
	kids := map[string]*child{}
	for _, id := range []string{"a", "b", "c"} {
		kids[id] = e.spawnWords(id, dirs[id])
	}
	produced := make(chan error, 1)
	p := &wordcountApp{e: e, prefix: e.prefix}
	e.wg.Go(func() { produced <- p.produceLines(lines, 30, 40*time.Millisecond) })

	progress := func(min int) func() bool {
		return func() bool { _, n, err := e.wordCounts(); return err == nil && n >= min }
	}
	waitFor(t, time.Minute, "a third of the output", progress(wantN/3))
	kids["b"].kill(t) // SIGKILL mid-stream: its open transaction is left to be fenced or to time out
	waitFor(t, time.Minute, "output while b is dead", progress(wantN/2))
	kids["b"] = e.spawnWords("b", dirs["b"])
	require.NoError(t, <-produced)
	waitFor(t, 2*time.Minute, "the whole output", progress(wantN))

	waitFor(t, time.Minute, "the repartition topic purged", func() bool {
		starts, err := e.admin.ListStartOffsets(ctx, repartition)
		if err != nil || starts.Error() != nil {
			return false
		}
		ends, err := e.admin.ListEndOffsets(ctx, repartition)
		if err != nil || ends.Error() != nil {
			return false
		}
		used, purged := 0, 0
		ends.Each(func(end kadm.ListedOffset) {
			if end.Offset > 0 {
				used++
				if start, _ := starts.Lookup(repartition, end.Partition); start.Offset > 0 {
					purged++
				}
			}
		})
		return used > 1 && purged == used // words of several partitions met through it, and each was purged
	})
	details, err := e.admin.ListTopics(ctx, repartition)
	require.NoError(t, err)
	require.Len(t, details[repartition].Partitions, partitions, "created with the input's partition count")

	for _, id := range []string{"a", "b", "c"} {
		kids[id].stop(t)
	}
	got, n, err := e.wordCounts()
	require.NoError(t, err)
	for w, total := range want {
		seq := got[w]
		for i, c := range seq {
			require.Equal(t, int64(i+1), c, "word %q: count %d of %d is %d (a gap or a repeat): %v", w, i+1, len(seq), c, seq)
		}
		require.Equal(t, total, int64(len(seq)), "word %q: final count", w)
	}
	require.Len(t, got, len(want), "a word that is in no valid line was counted")
	require.Equal(t, wantN, n)

	dl, err := exactlytest.ReadCommitted(ctx, mustClient(t, e), e.prefix+words.TopicDeadLetter, exactlytest.ReadOptions{Timeout: time.Minute})
	require.NoError(t, err)
	var dead []string
	for _, rs := range dl {
		for _, r := range rs {
			dead = append(dead, string(r.Value))
		}
	}
	require.Len(t, dead, bad, "every line that is not UTF-8 dead-lettered once")
	for _, v := range dead {
		require.Equal(t, "not \xff text", v)
	}
}

func mustClient(t *testing.T, e *env) *kgo.Client {
	t.Helper()
	cl, err := e.client()
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}
