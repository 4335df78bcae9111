package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/app"
	"github.com/exactly-stream/exactly/examples/wordcount"
)

// wordcountApp is the word-count example as its command builds it: the
// kit's Config, run in process through Config.Run, the code path of
// `wordcount run`.
type wordcountApp struct {
	e       *env
	cfg     app.Config
	prefix  string
	brokers string
	wg      sync.WaitGroup
}

// kitInstance is one `wordcount run` in process.
type kitInstance struct {
	name, dir, addr string
	cancel          context.CancelFunc
	done            chan error
}

// cli runs one command of the word count with the test's brokers and
// prefix appended, and returns its stdout and exit status.
func (a *wordcountApp) cli(args ...string) (string, int) {
	var out bytes.Buffer
	args = append(args, "--brokers", a.brokers, "--topic-prefix", a.prefix)
	err := a.cfg.Run(context.Background(), args, &out, io.Discard)
	return out.String(), app.ExitCode(err)
}

// start runs instance name on state directory dir, serving HTTP on a
// free local port.
func (a *wordcountApp) start(name, dir string) *kitInstance {
	t := a.e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	in := &kitInstance{name: name, dir: dir, addr: addr, cancel: cancel, done: make(chan error, 1)}
	args := []string{"run", "--brokers", a.brokers, "--topic-prefix", a.prefix, "--instance-id", name,
		"--state-dir", dir, "--http-addr", addr, "--commit-interval", "50ms", "--session-timeout", "6s",
		"--log-level", "error"}
	a.wg.Go(func() { in.done <- a.cfg.Run(ctx, args, io.Discard, io.Discard) })
	return in
}

// stop stops the instance cleanly and requires Run to return nil.
func (in *kitInstance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		require.NoError(t, err, "instance %s", in.name)
	case <-time.After(time.Minute):
		t.Fatalf("instance %s did not stop", in.name)
	}
}

// get fetches path from the instance's HTTP server.
func (in *kitInstance) get(path string) (int, []byte, error) {
	resp, err := http.Get("http://" + in.addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// wcLine is one input line.
type wcLine struct{ doc, text string }

// wcLines returns n lines over docs documents from a small vocabulary, so
// that words repeat within lines and across them.
func wcLines(rng *rand.Rand, n, docs int) []wcLine {
	vocab := []string{"exactly", "once", "Kafka", "stream", "state", "word", "count", "the", "a", "of"}
	out := make([]wcLine, n)
	for i := range out {
		ws := make([]string, 1+rng.IntN(6))
		for j := range ws {
			ws[j] = vocab[rng.IntN(len(vocab))]
		}
		out[i] = wcLine{doc: fmt.Sprintf("doc-%d", rng.IntN(docs)), text: strings.Join(ws, " ") + "."}
	}
	return out
}

// wcFold is what the word count must write for lines, in input order:
// per document the sequence of counts it emits, and its final counts.
func wcFold(lines []wcLine) (map[string][]wordcount.Count, map[string]map[string]int64) {
	emitted := make(map[string][]wordcount.Count)
	final := make(map[string]map[string]int64)
	for _, l := range lines {
		if final[l.doc] == nil {
			final[l.doc] = make(map[string]int64)
		}
		var order []string
		for _, w := range wordcount.Words(l.text) {
			final[l.doc][w]++
			if !wcContains(order, w) {
				order = append(order, w)
			}
		}
		for _, w := range order {
			emitted[l.doc] = append(emitted[l.doc], wordcount.Count{Word: w, Count: final[l.doc][w]})
		}
	}
	return emitted, final
}

func wcContains(s []string, w string) bool {
	for _, x := range s {
		if x == w {
			return true
		}
	}
	return false
}

// produceLines writes lines in chunks, keyed by document, pausing between
// chunks so that instances can come and go mid-stream.
func (a *wordcountApp) produceLines(lines []wcLine, chunk int, pause time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.e.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	for i := 0; i < len(lines); i += chunk {
		var recs []*kgo.Record
		for _, l := range lines[i:min(i+chunk, len(lines))] {
			recs = append(recs, &kgo.Record{Topic: a.prefix + wordcount.TopicLines, Key: []byte(l.doc), Value: []byte(l.text)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			return err
		}
		time.Sleep(pause)
	}
	return nil
}

// outputs reads the committed output, per document in order.
func (a *wordcountApp) outputs() (map[string][]wordcount.Count, int) {
	t := a.e.t
	out := make(map[string][]wordcount.Count)
	n := 0
	for _, recs := range a.e.readFrom(a.prefix+wordcount.TopicCounts, nil) {
		for _, r := range recs {
			var c wordcount.Count
			require.NoError(t, json.Unmarshal(r.Value, &c))
			out[string(r.Key)] = append(out[string(r.Key)], c)
			n++
		}
	}
	return out, n
}

// TestWordcountThroughTheKit runs the word-count example the way its
// command does (app.Config.Run): topics created and checked by the kit,
// two instances with HTTP servers, one stopped and restarted on its state
// directory while lines flow. The committed output must be exactly the
// fold of the input (every line counted once: no duplicate, no gap), the
// doctor must find nothing critical, and /metrics, /readyz and
// /state/words/{doc} must answer.
func TestWordcountThroughTheKit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := &wordcountApp{e: e, prefix: e.prefix + "wc-", brokers: strings.Join(e.brokers, ","), cfg: app.Config{
		Name: "wordcount", Topology: wordcount.Topology, Group: wordcount.Group, DeadLetterTopic: wordcount.TopicDeadLetter,
	}}
	out, code := a.cli("topics", "create", "--partitions", "4")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "created "+a.prefix+"wordcount-words-changelog")
	out, code = a.cli("topics", "check", "--partitions", "4")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "topics: OK")

	rng := rand.New(rand.NewPCG(13, 13))
	lines := wcLines(rng, 1200, 24)
	wantOut, wantFinal := wcFold(lines)
	wantN := 0
	for _, cs := range wantOut {
		wantN += len(cs)
	}

	inA := a.start("a", filepath.Join(e.root, "a"))
	inB := a.start("b", filepath.Join(e.root, "b"))
	defer func() { inA.cancel(); a.wg.Wait() }()
	produced := make(chan error, 1)
	a.wg.Go(func() { produced <- a.produceLines(lines, 40, 50*time.Millisecond) })

	waitFor(t, time.Minute, "output from both instances", func() bool { _, n := a.outputs(); return n > wantN/5 })
	inB.stop(t)
	waitFor(t, time.Minute, "output while b is down", func() bool { _, n := a.outputs(); return n > wantN/2 })
	inB = a.start("b", inB.dir)
	defer inB.cancel()
	require.NoError(t, <-produced)

	var got map[string][]wordcount.Count
	waitFor(t, 2*time.Minute, "the whole output", func() bool {
		var n int
		got, n = a.outputs()
		return n >= wantN
	})
	for doc, want := range wantOut {
		require.Equal(t, want, got[doc], "document %s: the committed output differs from the fold of the input", doc)
	}
	require.Len(t, got, len(wantOut))

	for _, in := range []*kitInstance{inA, inB} {
		waitFor(t, time.Minute, in.name+" ready", func() bool { c, _, err := in.get("/readyz"); return err == nil && c == http.StatusOK })
		c, body, err := in.get("/metrics")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, c)
		require.Contains(t, string(body), "exactly_records_in_total")
		require.Contains(t, string(body), "exactly_transactions_committed_total")
	}
	for doc, want := range wantFinal {
		// A cooperative rebalance (the second instance's join may still be
		// settling) leaves a partition with no owner for a moment: both
		// answer 421, and a client asks again. Some instance must answer
		// within the minute.
		waitFor(t, time.Minute, "an instance that owns "+doc, func() bool {
			var answered bool
			for _, in := range []*kitInstance{inA, inB} {
				c, body, err := in.get("/state/" + wordcount.StoreWords + "/" + doc)
				require.NoError(t, err)
				if c != http.StatusOK {
					require.Equal(t, http.StatusMisdirectedRequest, c, string(body))
					continue
				}
				var resp struct {
					Found bool             `json:"found"`
					Value map[string]int64 `json:"value"`
				}
				require.NoError(t, json.Unmarshal(body, &resp))
				require.True(t, resp.Found, doc)
				require.Equal(t, want, resp.Value, "state of %s", doc)
				answered = true
			}
			return answered
		})
	}

	out, code = a.cli("doctor", "--json")
	var rep admin.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Contains(t, []int{app.ExitOK, app.ExitWarning}, code, out)
	for _, f := range rep.Findings {
		require.NotEqual(t, admin.Critical, f.Severity, "%s %s: %s", f.Check, f.Subject, f.Message)
	}

	inB.stop(t)
	inA.stop(t)
}
