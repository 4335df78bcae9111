package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/httpapi"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// greetings counts greetings per name in store "counts" and writes each
// new count to topic "greeted".
func greetings() *topology.Topology {
	b := topology.NewBuilder()
	src := topology.Source(b, "in", "greetings", topology.String(), topology.String())
	counts := topology.Store(b, "counts", topology.String(), topology.JSON[int64]())
	out := topology.Sink(b, "out", "greeted", topology.String(), topology.JSON[int64](), topology.Parents("count"))
	topology.Node(b, "count", func(ctx *topology.Call, r topology.Record[string, string]) error {
		n, _, err := counts.Get(ctx, r.Key)
		if err != nil {
			return err
		}
		if err := counts.Put(ctx, r.Key, n+1); err != nil {
			return err
		}
		return out.Send(ctx, r.Key, n+1)
	}, topology.Parents(src.Name()), topology.Stores(counts.Name()))
	top, err := b.Build()
	if err != nil {
		log.Fatal(err)
	}
	return top
}

// get returns the status and body of GET url.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metric returns the line of /metrics that starts with name, or "".
func metric(url, name string) string {
	_, body := get(url + "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			return l
		}
	}
	return ""
}

// waitFor polls cond for at most 10s.
func waitFor(what string, cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatalf("timed out waiting for %s", what)
		}
	}
}

// ExampleNew serves a processor's endpoints: the Server is made before the
// processor (its hooks feed the metrics), attached to it, and its Handler
// served. The cluster is an in-process kfake one.
func ExampleNew() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "greetings"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	dir, err := os.MkdirTemp("", "httpapi-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	api := httpapi.New("greeter")
	p, err := processor.New(greetings(), processor.Brokers(c.ListenAddrs()...), processor.Group("greeter"),
		processor.StateDir(dir), processor.CommitInterval(50*time.Millisecond), processor.WithHooks(api.Hooks()))
	if err != nil {
		log.Fatal(err)
	}
	api.Attach(p)
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	fmt.Println(get(srv.URL + "/healthz"))
	fmt.Println(get(srv.URL + "/readyz")) // not running yet

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor("ready", func() bool { code, _ := get(srv.URL + "/readyz"); return code == http.StatusOK })
	fmt.Println(get(srv.URL + "/readyz"))

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "greetings", Key: []byte("ada"), Value: []byte("hello")}).FirstErr(); err != nil {
			log.Fatal(err)
		}
	}
	// Read your write: wait until the state reflects input offset 2.
	fmt.Println(get(srv.URL + "/state/counts/ada?min_offset=2&wait=5s"))
	waitFor("the commit hooks", func() bool { return strings.HasSuffix(metric(srv.URL, "exactly_records_in_total"), " 3") })
	fmt.Println(metric(srv.URL, "exactly_records_in_total"))
	fmt.Println(metric(srv.URL, "exactly_ready"))
	// Output:
	// 200 {"status":"alive"}
	// 503 {"status":"not ready: joining the group or restoring"}
	// 200 {"status":"ready"}
	// 200 {"store":"counts","key":"ada","partition":0,"offset":2,"found":true,"value":3}
	// exactly_records_in_total{group="greeter"} 3
	// exactly_ready{group="greeter"} 1
}
