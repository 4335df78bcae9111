package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recordingHandler keeps every log record at or above Debug, for tests that
// assert what the processor logged.
type recordingHandler struct {
	mu struct {
		sync.Mutex
		records []string // level, message and attributes, as text
	}
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h } // unused by the processor's records
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		sb.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.records = append(h.mu.records, sb.String())
	return nil
}

// at returns the records at level.
func (h *recordingHandler) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(h.mu.records), func(s string) bool { return !strings.HasPrefix(s, level.String()+" ") })
}

// TestFirstStartLogsNoWarning: every first start created the changelogs and
// then warned, attempt after attempt, "listing log start offsets ...
// partition missing from the response" until the client's cached metadata,
// read before the changelogs existed, aged out (about 3s and 7 warnings on
// a real cluster). Nothing was wrong: the processor now waits for the
// topics it created to show in the metadata before it restores, so a first
// start on a fresh cluster logs no warning at all.
func TestFirstStartLogsNoWarning(t *testing.T) {
	c := newCluster(t, 4)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 4, 5, nil)
	h := &recordingHandler{}
	begin := time.Now()
	in := start(t, counterTopology(t), brokers, t.TempDir(), "a", WithLogger(slog.New(h)))
	in.waitRecords(t, 20)
	took := time.Since(begin)
	in.close(t)
	require.Empty(t, h.at(slog.LevelWarn), "a first start on a fresh cluster")
	require.Empty(t, h.at(slog.LevelError))
	require.Less(t, took, 10*time.Second)
	created := slices.DeleteFunc(h.at(slog.LevelInfo), func(s string) bool { return !strings.Contains(s, "created topic") })
	require.Len(t, created, 3, "the changelog, the sink and the dead-letter topic: %v", created)
}

// TestRetryLogLevels: the first retries of a topic or partition the
// metadata does not show yet are routine (debug); later ones, and other
// errors from the first, are warnings.
func TestRetryLogLevels(t *testing.T) {
	for name, tc := range map[string]struct {
		err   error
		debug int // retries logged at debug before the warnings
	}{
		"partition missing":      {err: errMissing(false), debug: quietRetries},
		"unknown topic":          {err: fmt.Errorf("changelog x: %w", kerr.UnknownTopicOrPartition), debug: quietRetries},
		"leader not available":   {err: kerr.LeaderNotAvailable, debug: quietRetries},
		"not leader":             {err: kerr.NotLeaderForPartition, debug: quietRetries},
		"offsets unstable":       {err: kerr.UnstableOffsetCommit, debug: quietRetries},
		"broker down":            {err: errors.New("unable to dial: connection refused")},
		"coordinator not loaded": {err: kerr.CoordinatorLoadInProgress},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := &recordingHandler{}
			p := &Processor{cfg: cfg{logger: slog.New(h), restoreTimeout: time.Minute}}
			calls := 0
			require.NoError(t, p.retry(context.Background(), "testing", func() error {
				if calls++; calls <= quietRetries+2 {
					return tc.err
				}
				return nil
			}))
			require.Len(t, h.at(slog.LevelDebug), tc.debug)
			require.Len(t, h.at(slog.LevelWarn), quietRetries+2-tc.debug)
		})
	}
}

// TestStartRidesOutABrokerFailingTopicChecks: a broker that dies while it
// answers the start's topic checks (on Kafka, one shutting down closed the
// connection during the api versions negotiation of a DescribeConfigs)
// made Run return that error, and the chaos soak counted an instance
// stopping on its own. The checks are retried now, for the startup
// timeout. And an error for the changelog alone in DescribeConfigs' answer
// was ignored, which skipped the check that it is compacted.
func TestStartRidesOutABrokerFailingTopicChecks(t *testing.T) {
	c := newCluster(t, 2)
	brokers := c.ListenAddrs()
	produceInputs(t, brokers, 2, 5, nil)
	dir := t.TempDir()
	first := start(t, counterTopology(t), brokers, dir, "a")
	first.waitRecords(t, 10)
	first.close(t) // the changelog exists now: the next start describes it

	// Two answers that fail the check: UNKNOWN_SERVER_ERROR for the
	// changelog, as from a broker going down (kgo does not retry it).
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.DescribeConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Add(1) > 2 {
			return nil, nil, false
		}
		c.KeepControl()
		r := req.(*kmsg.DescribeConfigsRequest)
		resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, rr := range r.Resources {
			res := kmsg.NewDescribeConfigsResponseResource()
			res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
			res.ErrorCode = kerr.UnknownServerError.Code
			resp.Resources = append(resp.Resources, res)
		}
		return resp, nil, true
	})
	produceInputs(t, brokers, 2, 5, nil)
	again := start(t, counterTopology(t), brokers, dir, "a")
	again.waitRecords(t, 10)
	again.close(t)
	require.GreaterOrEqual(t, failed.Load(), int32(2), "the fault was injected")
}
