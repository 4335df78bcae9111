package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/httpapi"
	"github.com/exactly-stream/exactly/processor"
	"github.com/exactly-stream/exactly/topology"
)

// serviceConfig is what `exactly run` needs to start one instance.
type serviceConfig struct {
	service        string
	brokers        string
	group          string
	instanceID     string
	stateDir       string
	maxRecords     int
	commitInterval time.Duration
	txnTimeout     time.Duration
	createTopics   bool
	replication    int
	topicPrefix    string
	sessionTimeout time.Duration
	restoreBatch   int
	errorPolicy    string
	resetState     bool
	metricsAddr    string
}

func (c *serviceConfig) flags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.service, "service", "order", "which service to run: order or payment")
	fs.StringVar(&c.brokers, "brokers", "", "comma-separated seed brokers (required)")
	fs.StringVar(&c.group, "group", "", "consumer group and application id (default: orders-svc or payments-svc)")
	fs.StringVar(&c.instanceID, "instance-id", host, "stable instance id; the transactional id is <group>-<instance id>")
	fs.StringVar(&c.stateDir, "state-dir", "", "directory of the local state (required)")
	fs.IntVar(&c.maxRecords, "max-records", 1000, "input records per transaction at most")
	fs.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "how long a transaction collects records at most")
	fs.DurationVar(&c.txnTimeout, "transaction-timeout", 10*time.Second, "transaction timeout (Java transaction.timeout.ms)")
	fs.BoolVar(&c.createTopics, "create-topics", true, "create missing changelog, output and dead-letter topics")
	fs.IntVar(&c.replication, "replication-factor", -1, "replication factor of created topics (-1: broker default)")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "", "prefix of every topic and default group name (several pipelines on one cluster)")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 45*time.Second, "group session timeout (Java session.timeout.ms)")
	fs.IntVar(&c.restoreBatch, "restore-batch", 10000, "changelog records per restore batch")
	fs.StringVar(&c.errorPolicy, "error-policy", "dead-letter", "what to do with a bad record: dead-letter, fail or skip")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics, /healthz, /readyz and /state/{store}/{key} on this address (e.g. :9100)")
	fs.BoolVar(&c.resetState, "reset-state", false, "wipe local state and the changelogs, then rebuild state from the group's committed offsets on (after an operator moved them)")
}

// topology returns the service's topology, group and dead-letter topic.
func (c *serviceConfig) topology() (*topology.Topology, string, string, error) {
	ts := orders.TopicsWithPrefix(c.topicPrefix)
	switch c.service {
	case "order":
		t, err := orders.OrderTopologyFor(ts)
		return t, c.topicPrefix + orders.DefaultOrderGroup, ts.DLQ, err
	case "payment":
		t, err := orders.PaymentTopologyFor(ts)
		return t, c.topicPrefix + orders.DefaultPaymentGroup, ts.PaymentsDLQ, err
	}
	return nil, "", "", fmt.Errorf("%w: --service: want order or payment, got %q", errUsage, c.service)
}

// groupName returns the consumer group the configuration runs in.
func (c *serviceConfig) groupName() string {
	if c.group != "" {
		return c.group
	}
	if c.service == "payment" {
		return c.topicPrefix + orders.DefaultPaymentGroup
	}
	return c.topicPrefix + orders.DefaultOrderGroup
}

// serve listens on addr and serves h until stop is called, which shuts the
// server down. A bad address fails at once, naming the flag.
func serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics-addr: %w", errUsage, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { // ended by stop below
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving metrics, health and state", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // in-flight queries get 5s
		<-done
	}, nil
}

// processor builds the processor for this configuration.
func (c *serviceConfig) processor(opts ...processor.Opt) (*processor.Processor, error) {
	topo, group, dlq, err := c.topology()
	if err != nil {
		return nil, err
	}
	if c.group != "" {
		group = c.group
	}
	brokers := splitBrokers(c.brokers)
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: --brokers (or EXACTLY_BROKERS) is required", errUsage)
	}
	if c.stateDir == "" {
		return nil, fmt.Errorf("%w: --state-dir (or EXACTLY_STATE_DIR) is required", errUsage)
	}
	if c.sessionTimeout < time.Second {
		return nil, fmt.Errorf("%w: --session-timeout: want at least 1s, got %s", errUsage, c.sessionTimeout)
	}
	if c.replication < -1 || c.replication == 0 || c.replication > 32767 {
		return nil, fmt.Errorf("%w: --replication-factor: want -1 or 1..32767, got %d", errUsage, c.replication)
	}
	policy, err := processor.ParseErrorPolicy(c.errorPolicy)
	if err != nil {
		return nil, fmt.Errorf("%w: --error-policy: %w", errUsage, err)
	}
	base := []processor.Opt{
		processor.OnBadRecord(policy),
		processor.RestoreBatchRecords(c.restoreBatch),
		processor.ResetState(c.resetState),
		processor.Brokers(brokers...),
		processor.Group(group),
		processor.InstanceID(c.instanceID),
		processor.StateDir(c.stateDir),
		processor.MaxRecordsPerTxn(c.maxRecords),
		processor.CommitInterval(c.commitInterval),
		processor.TransactionTimeout(c.txnTimeout),
		processor.DeadLetterTopic(dlq),
		processor.CreateTopics(c.createTopics),
		processor.ReplicationFactor(int16(c.replication)),
		processor.KgoOpts(kgo.SessionTimeout(c.sessionTimeout), kgo.HeartbeatInterval(c.sessionTimeout/15)),
	}
	return processor.New(topo, append(base, opts...)...)
}

func runCmd(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c serviceConfig
	c.flags(fs)
	logger := logFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logger()
	if err != nil {
		return err
	}
	api := httpapi.New(c.groupName())
	p, err := c.processor(processor.WithLogger(log), processor.WithHooks(api.Hooks()))
	if err != nil {
		return err
	}
	api.Attach(p)
	log.Info("starting", "service", c.service, "transactional_id", p.TransactionalID())
	if c.metricsAddr != "" {
		stop, err := serve(ctx, c.metricsAddr, api.Handler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := p.Run(ctx); err != nil {
		return err
	}
	s := p.Stats()
	log.Info("stopped", "committed", s.Committed, "aborted", s.Aborted, "records", s.Records, "dead_lettered", s.DeadLettered)
	return nil
}
