package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/httpapi"
	"github.com/exactly-stream/exactly/processor"
)

// TestOperate runs the operator surface against the cluster under test:
// topics created and checked, an instance serving metrics, readiness and
// state queries while it processes, and the doctor finding nothing wrong
// once the pipeline is done.
func TestOperate(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(t, err)
	defer cl.Close()
	ot, err := orders.OrderTopologyFor(e.topics)
	require.NoError(t, err)
	pt, err := orders.PaymentTopologyFor(e.topics)
	require.NoError(t, err)
	pipe := admin.Pipeline{Stages: []admin.Stage{
		admin.StageOf(ot, e.group("order"), e.topics.DLQ),
		admin.StageOf(pt, e.group("payment"), e.topics.PaymentsDLQ),
	}}
	tc := admin.TopicsConfig{Partitions: partitions, ReplicationFactor: -1}
	created, err := admin.CreateTopics(ctx, cl, pipe, tc)
	require.NoError(t, err)
	require.True(t, created.OK(), "%+v", created.Mismatches)

	api := httpapi.New(e.group("order"))
	in := e.start("order", "a", "a", processor.WithHooks(api.Hooks()))
	api.Attach(in.p)
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	st := e.produce(1000, 12, 0)
	rep := e.waitVerified(false, 2*time.Minute)
	require.Equal(t, st.Valid, rep.Events)
	code, _ := httpGet(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, code)
	code, body := httpGet(t, srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `exactly_records_out_total{group="`+e.group("order")+`"} `+strconv.Itoa(st.Valid))

	// Every customer's committed state equals the fold.
	for id, want := range rep.Expected.Customers {
		code, body := httpGet(t, srv.URL+"/state/customers/"+id)
		require.Equal(t, http.StatusOK, code, body)
		var resp struct {
			Value json.RawMessage `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &resp))
		var got orders.Customer
		require.NoError(t, json.Unmarshal(resp.Value, &got))
		require.Equal(t, want.OrderCount, got.OrderCount, "customer %s", id)
		require.Equal(t, want.TotalCents, got.TotalCents, "customer %s", id)
	}

	checked, err := admin.CheckTopics(ctx, cl, pipe, tc)
	require.NoError(t, err)
	require.True(t, checked.OK(), "%+v", checked.Mismatches)
	doc, err := admin.Doctor(ctx, cl, pipe, admin.DoctorOptions{TxnThreshold: time.Minute})
	require.NoError(t, err)
	for _, f := range doc.Findings {
		// The payment stage never ran in this test: its group is absent.
		if f.Check == admin.CheckGroups && strings.Contains(f.Subject, orders.DefaultPaymentGroup) {
			continue
		}
		require.NotEqual(t, admin.Critical, f.Severity, "doctor: %s", f)
	}
	e.finalCheck(false)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
