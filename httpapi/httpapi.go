// Package httpapi serves an instance's operations endpoints: Prometheus
// metrics, liveness, readiness and queries of its committed state.
//
//	GET /metrics                      Prometheus text format
//	GET /healthz                      200 while the process runs
//	GET /readyz                       200 when every assigned partition is restored and processing, else 503
//	GET /state/{store}/{key}          the key's committed state and the input offset it reflects
//	    ?min_offset=N&wait=5s         wait (bounded) until the state reflects input offset N (read your write)
//	    ?route=K                      find the key's partition by input key K (a store keyed unlike its input)
//	    ?from=T&to=T                  a window store: the key's windows starting in [from, to] (RFC 3339; default all)
//
// It serves any topology. Make the Server first, since its hooks feed the
// metrics, give them to the processor, attach the processor and serve the
// handler:
//
//	api := httpapi.New(group)
//	p, err := processor.New(top, processor.Group(group), processor.WithHooks(api.Hooks()), ...)
//	api.Attach(p)
//	go http.ListenAndServe(addr, api.Handler())
//
// /state can be guarded: Handler(StateToken(token)) requires a bearer
// token, Handler(StateClientCerts()) a verified client certificate (mTLS,
// with TLSConfig and a client CA); either answers 401 without. TLSConfig
// serves TLS from certificate and key files:
//
//	cfg, err := httpapi.TLSConfig(certFile, keyFile, clientCAFile)
//	srv := &http.Server{Addr: addr, Handler: api.Handler(httpapi.StateToken(token)), TLSConfig: cfg}
//	go srv.ListenAndServeTLS("", "")
//
// Until a processor is attached, /readyz answers 503 and state queries
// "not started". A state query answers 200 with the value (as JSON, or as
// a JSON string when the stored bytes are not JSON), 421 naming the owner
// when another instance owns the key's partition, 504 when the state does
// not reflect min_offset within wait, 404 for a store the topology does
// not have, 503 before the processor started, 400 for bad parameters.
// Every answer is a JSON object with store, key, partition, offset (-1
// when unknown), found, and value, owner or error as they apply.
//
// The key's partition is the one the key would go to as an input record
// key. A store written under other keys than its input's needs route=K,
// the input key that wrote it (processor.RoutingKey); without it the
// answer comes from the wrong partition. The owner of a 421 is the owning
// instance's transactional ID (<group>-<instance id>): a deployment maps
// it to that instance's address (a StatefulSet's pod name is its
// instance ID).
//
// The metrics, labelled with the group: exactly_records_in_total,
// exactly_records_out_total, exactly_records_dead_lettered_total,
// exactly_records_skipped_total, exactly_transactions_committed_total,
// exactly_transactions_aborted_total{cause},
// exactly_transaction_duration_seconds,
// exactly_transaction_ending_seconds, exactly_transaction_records,
// exactly_rebalances_total, exactly_restored_records_total{store},
// exactly_restore_remaining_offsets{store,partition}, and, read at scrape
// time, exactly_ready, exactly_consumer_lag_offsets{partition} and the
// local state store's exactly_state_* figures.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/exactly-stream/exactly/processor"
)

// MaxWait bounds the wait parameter of state queries.
const MaxWait = 30 * time.Second

// Server holds the metrics of one processor and serves the endpoints.
// Create it before the processor (its Hooks go into processor.WithHooks),
// then Attach the processor.
type Server struct {
	reg *prometheus.Registry
	m   *metrics

	mu struct {
		sync.Mutex
		p *processor.Processor
	}
}

// New returns a Server whose metrics carry the label group.
func New(group string) *Server {
	s := &Server{reg: prometheus.NewRegistry()}
	s.m = newMetrics(s.reg, group, s.processor)
	return s
}

// Attach sets the processor whose readiness, lag, state and store metrics
// the server reports.
func (s *Server) Attach(p *processor.Processor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.p = p
}

func (s *Server) processor() *processor.Processor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.p
}

// Hooks returns the processor hooks that feed the metrics.
func (s *Server) Hooks() processor.Hooks { return s.m.hooks() }

// Handler returns the HTTP handler of every endpoint. Options guard /state
// (StateToken, StateClientCerts); the other endpoints are always open.
func (s *Server) Handler(opts ...HandlerOpt) http.Handler {
	var cfg handlerCfg
	for _, o := range opts {
		o.apply(&cfg)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /state/{store}/{key}", cfg.guard(http.HandlerFunc(s.state)))
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if p := s.processor(); p != nil && p.Ready() {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: joining the group or restoring"})
}

// stateResponse is the body of a state query.
type stateResponse struct {
	Store     string          `json:"store"`
	Key       string          `json:"key"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"` // last input offset the state reflects, -1 before any
	Found     bool            `json:"found"`
	Value     json.RawMessage `json:"value,omitempty"`
	Windows   []windowJSON    `json:"windows,omitempty"` // a window store's answer
	Owner     string          `json:"owner,omitempty"`   // set when another instance owns the key
	Error     string          `json:"error,omitempty"`
}

// windowJSON is one window of a key in a window store's answer.
type windowJSON struct {
	Start time.Time       `json:"start"`
	End   time.Time       `json:"end"`
	Value json.RawMessage `json:"value"`
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	store, key := r.PathValue("store"), r.PathValue("key")
	resp := stateResponse{Store: store, Key: key, Offset: -1}
	minOffset, wait, err := queryParams(r)
	if err != nil {
		resp.Error = err.Error()
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	p := s.processor()
	if p == nil {
		resp.Error = "not started"
		writeJSON(w, http.StatusServiceUnavailable, resp)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	var opts []processor.QueryOpt
	if route, ok := r.URL.Query()["route"]; ok {
		opts = append(opts, processor.RoutingKey([]byte(route[0])))
	}
	from, to, err := windowParams(r)
	if err != nil {
		resp.Error = err.Error()
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	var wins []processor.WindowValue
	l, err := awaitOffset(ctx, minOffset, func() (processor.QueryResult, error) {
		l, err := p.Query(ctx, store, []byte(key), opts...)
		if errors.Is(err, processor.ErrWindowStore) {
			wins, l, err = p.QueryWindows(ctx, store, []byte(key), from, to, opts...)
		}
		return l, err
	})
	resp.Partition, resp.Offset, resp.Found = l.Partition, l.Offset, l.Found
	if l.Found && l.Value != nil {
		resp.Value = asJSON(l.Value)
	}
	for _, wv := range wins {
		resp.Windows = append(resp.Windows, windowJSON{Start: wv.Window.Start, End: wv.Window.End, Value: asJSON(wv.Value)})
	}
	writeJSON(w, statusOf(err, &resp), resp)
}

// windowParams reads from and to (RFC 3339), which bound the start of the
// windows a window store query returns; by default every window.
func windowParams(r *http.Request) (from, to time.Time, err error) {
	from, to = time.UnixMilli(math.MinInt64/2), time.UnixMilli(math.MaxInt64)
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := r.URL.Query().Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return from, to, fmt.Errorf("%s: want an RFC 3339 time, got %q", p.name, v)
			}
		}
	}
	return from, to, nil
}

// statusOf maps a lookup error to a status and fills the response's error
// and owner.
func statusOf(err error, resp *stateResponse) int {
	var noe *processor.NotOwnerError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &noe):
		resp.Partition, resp.Owner, resp.Error = noe.Partition, noe.Owner, noe.Error()
		return http.StatusMisdirectedRequest
	case errors.Is(err, context.DeadlineExceeded):
		resp.Error = "the state does not reflect min_offset yet"
		return http.StatusGatewayTimeout
	case errors.Is(err, processor.ErrUnknownStore):
		resp.Error = err.Error()
		return http.StatusNotFound
	case errors.Is(err, processor.ErrNotStarted):
		resp.Error = err.Error()
		return http.StatusServiceUnavailable
	}
	resp.Error = err.Error()
	return http.StatusInternalServerError
}

// awaitOffset runs query until its partition's state reflects minOffset
// or ctx ends.
func awaitOffset(ctx context.Context, minOffset int64, query func() (processor.QueryResult, error)) (processor.QueryResult, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		l, err := query()
		if err != nil || l.Offset >= minOffset {
			return l, err
		}
		select {
		case <-ctx.Done():
			return l, ctx.Err()
		case <-tick.C:
		}
	}
}

func queryParams(r *http.Request) (minOffset int64, wait time.Duration, err error) {
	minOffset, wait = -1, 5*time.Second
	if v := r.URL.Query().Get("min_offset"); v != "" {
		if minOffset, err = strconv.ParseInt(v, 10, 64); err != nil || minOffset < 0 {
			return 0, 0, errors.New("min_offset: want a non-negative integer")
		}
	}
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait <= 0 || wait > MaxWait {
			return 0, 0, errors.New("wait: want a duration in (0, 30s]")
		}
	}
	return minOffset, wait, nil
}

// asJSON returns v as it is when it is JSON, else as a JSON string.
func asJSON(v []byte) json.RawMessage {
	if json.Valid(v) {
		return v
	}
	b, _ := json.Marshal(string(v))
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}
