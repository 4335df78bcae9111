package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/exactly-stream/exactly/exactlytest"
	"github.com/exactly-stream/exactly/examples/enrich"
)

// enrichBinary is the race-built command of the enrich example, built
// once on first use next to the exactly binary.
var enrichBinary struct {
	once sync.Once
	path string
	err  error
}

func enrichBinaryPath(t testing.TB) string {
	t.Helper()
	enrichBinary.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "enrich")
		build := exec.Command("go", "build", "-race", "-o", path, "../examples/enrich/cmd/enrich")
		if out, err := build.CombinedOutput(); err != nil {
			enrichBinary.err = fmt.Errorf("building the enrich binary: %w\n%s", err, out)
			return
		}
		enrichBinary.path = path
	})
	require.NoError(t, enrichBinary.err)
	return enrichBinary.path
}

// spawnEnrich starts `enrich run` with topic prefix prefix as instance id
// on state directory dir. Small transactions (20 records) keep a cold
// start's backlog in flight long enough to kill an instance mid-stream.
func (e *env) spawnEnrich(prefix, id, dir string) *child {
	e.t.Helper()
	c := startChild(e.t, &e.wg, "enrich instance "+id, id, enrichBinaryPath(e.t), []string{"run", "--brokers", strings.Join(e.brokers, ","),
		"--instance-id", id, "--state-dir", dir, "--topic-prefix", prefix,
		"--commit-interval", "100ms", "--max-records", "20",
		"--session-timeout", "6s", "--transaction-timeout", "5s",
		"--log-level", "info", "--log-format", "json"}, e.childEnv())
	c.dir = dir
	return c
}

// enrichOutput reads the committed output of the enrich example with
// topic prefix prefix. A topic not created yet reads as empty.
func (e *env) enrichOutput(prefix string) ([]enrich.Output, error) {
	cl, err := e.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs, err := exactlytest.ReadCommitted(context.Background(), cl, prefix+enrich.TopicEnriched, exactlytest.ReadOptions{Timeout: time.Minute})
	if err != nil {
		return nil, err
	}
	return enrich.Decode(exactlytest.Records(recs))
}

// TestEnrichExactlyOnceAcrossInstances runs the enrich example (orders
// joined with a compacted topic of customer profiles) as 2 processes on a
// cold start: every profile version and every order is in the topics
// before the first instance starts, the orders written first, with
// timestamps that interleave. The second instance joins once the first is
// under way, is SIGKILLed mid-stream (some but not all of the output
// committed) and restarted on its state directory. The committed output (read_committed) must hold every order
// exactly once, with its customer's profile as of the order's timestamp
// (enrich.Check): a task that read its two topics in arrival order, or a
// restart that lost the table or replayed orders against a newer one,
// would enrich orders with later profiles; an aborted or replayed
// transaction would show as a duplicate.
func TestEnrichExactlyOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// A prefix of its own: the env already has an orders topic of the
	// orders example.
	prefix := e.prefix + "enrich-"
	for _, topic := range []struct {
		name    string
		configs map[string]*string
	}{
		{prefix + enrich.TopicOrders, nil},
		{prefix + enrich.TopicCustomers, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}},
	} {
		resp, err := e.admin.CreateTopic(ctx, partitions, -1, topic.configs, topic.name)
		require.NoError(t, err)
		require.NoError(t, resp.Err, "creating %s", topic.name)
	}

	// 20 customers with 10 versions each, a minute apart, and 3000 orders
	// over those 11 minutes; stamped in the last few hours, so that a real
	// broker's retention keeps them.
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	versions, placed := enrich.Generate(20, base, 20, 10, 3000)
	customers, orders := enrich.Records(prefix, versions, placed)
	cl := mustClient(t, e)
	require.NoError(t, cl.ProduceSync(ctx, orders...).FirstErr())
	require.NoError(t, cl.ProduceSync(ctx, customers...).FirstErr())

	count := func() int {
		out, err := e.enrichOutput(prefix)
		if err != nil {
			return -1
		}
		return len(out)
	}
	progress := func(min int) func() bool { return func() bool { return count() >= min } }

	// a starts alone and b joins once a is under way (a scale-up): b's
	// tasks move from a to b, and back to a when b dies.
	dirs := map[string]string{"a": filepath.Join(e.root, "a"), "b": filepath.Join(e.root, "b")}
	kids := map[string]*child{"a": e.spawnEnrich(prefix, "a", dirs["a"])}
	waitFor(t, time.Minute, "a tenth of the output", progress(len(placed)/10))
	kids["b"] = e.spawnEnrich(prefix, "b", dirs["b"])
	waitFor(t, time.Minute, "b to be assigned partitions", func() bool { return len(kids["b"].logs("restored store partition")) > 0 })
	waitFor(t, time.Minute, "a fifth of the output", progress(len(placed)/5))
	kids["b"].kill(t) // SIGKILL mid-stream: its open transaction is left to be fenced or to time out
	n := count()
	require.Less(t, n, len(placed), "the kill came before the end of the output")
	t.Logf("b killed with %d of %d orders enriched", n, len(placed))
	waitFor(t, time.Minute, "output while b is dead", progress(n+len(placed)/10))
	kids["b"] = e.spawnEnrich(prefix, "b", dirs["b"])
	waitFor(t, 2*time.Minute, "the whole output", progress(len(placed)))

	for _, id := range []string{"a", "b"} {
		kids[id].stop(t)
	}
	// A task that gave up waiting for an input the broker said had
	// records processes the other input ahead of them: name it if the
	// check fails.
	var wentOn []string
	for _, id := range []string{"a", "b"} {
		for _, l := range kids[id].logs("a joined input reports records its fetches did not return; going on without them") {
			wentOn = append(wentOn, fmt.Sprintf("instance %s: %s[%v] at %v, last stable offset %v, after waiting %vns",
				id, l["topic"], l["partition"], l["position"], l["last_stable_offset"], l["waited"]))
		}
	}
	out, err := e.enrichOutput(prefix)
	require.NoError(t, err)
	require.NoError(t, enrich.Check(versions, placed, out), "tasks that went on without a joined input's records: %q", wentOn)
}
