package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// A window store answers /state with the key's windows, bounded by from
// and to; a bad bound is a 400 naming the parameter.
func TestWindowStateQueries(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()

	b := topology.NewBuilder()
	topology.Source(b, "in", "in", topology.String(), topology.String())
	wins := topology.WindowStore(b, "per-minute", topology.String(), topology.JSON[int64]())
	topology.Node(b, "count", func(c *topology.Call, r topology.Record[string, string]) error {
		start := r.Timestamp.Truncate(time.Minute)
		w := topology.Window{Start: start, End: start.Add(time.Minute)}
		n, _, err := wins.Get(c, r.Key, w)
		if err != nil {
			return err
		}
		c.Count("counted", 1)
		if r.Value == "bad" {
			return errors.New("bad record: its count is not counted")
		}
		return wins.Put(c, r.Key, w, n+1)
	}, topology.Parents("in"), topology.Stores("per-minute"))
	topo, err := b.Build()
	require.NoError(t, err)

	api := New("w")
	p, err := processor.New(topo, processor.Brokers(brokers...), processor.Group("w"), processor.InstanceID("a"),
		processor.StateDir(t.TempDir()), processor.DeadLetterTopic("dlq"), processor.CommitInterval(50*time.Millisecond),
		processor.WithHooks(api.Hooks()), processor.KgoOpts(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(200*time.Millisecond)))
	require.NoError(t, err)
	api.Attach(p)
	srv := httptest.NewServer(api.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); srv.Close() })

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var last *kgo.Record
	for i, m := range []int{0, 2, 2, 5, 5} {
		v := "x"
		if i == 3 {
			v = "bad"
		}
		last, err = cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Key: []byte("a"), Value: []byte(v), Timestamp: t0.Add(time.Duration(m) * time.Minute)}).First()
		require.NoError(t, err)
	}

	waitFor(t, "ready", p.Ready)
	var resp stateResponse
	code, body := get(t, srv.URL+"/state/per-minute/a?min_offset="+itoa(int(last.Offset))+"&wait=10s")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.True(t, resp.Found, body)
	require.Nil(t, resp.Value)
	require.Len(t, resp.Windows, 3, body)
	require.Equal(t, t0.Add(2*time.Minute), resp.Windows[1].Start)
	require.Equal(t, t0.Add(3*time.Minute), resp.Windows[1].End)
	require.JSONEq(t, "2", string(resp.Windows[1].Value))

	code, body = get(t, srv.URL+"/state/per-minute/a?from=2026-12-01T10:01:00Z&to=2026-12-01T10:02:00Z")
	require.Equal(t, http.StatusOK, code, body)
	resp = stateResponse{}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Len(t, resp.Windows, 1, body)

	code, body = get(t, srv.URL+"/state/per-minute/nobody")
	require.Equal(t, http.StatusOK, code, body)
	resp = stateResponse{}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.False(t, resp.Found, body)

	code, body = get(t, srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `exactly_topology_events_total{event="counted",group="w",node="count"} 4`, "the bad record's count was dropped with it")
	require.Equal(t, map[processor.Event]int64{{Node: "count", Name: "counted"}: 4}, p.Stats().Events)

	code, body = get(t, srv.URL+"/state/per-minute/a?from=yesterday")
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "from: want an RFC 3339 time")
}
