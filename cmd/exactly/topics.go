package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/examples/orders"
)

// Exit statuses of the operator checks (see exitCode): a check that ran
// and found problems, as opposed to one that could not run (1) or was
// called wrongly (2).
const (
	exitMismatch = 3 // topics check: some topic differs from what the pipeline needs
	exitWarning  = 4 // doctor: warnings, nothing critical
	exitCritical = 5 // doctor: something critical
)

// exitError is a check's verdict with its exit status; exitCode returns
// code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// pipelineFlags adds the flags that name the pipeline's topics and groups.
func pipelineFlags(fs *flag.FlagSet) func() admin.Pipeline {
	prefix := fs.String("topic-prefix", "", "prefix of every topic and default group name")
	orderGroup := fs.String("order-group", "", "group of the order service, if run with --group (default <prefix>"+orders.DefaultOrderGroup+")")
	paymentGroup := fs.String("payment-group", "", "group of the payment stage, if run with --group (default <prefix>"+orders.DefaultPaymentGroup+")")
	return func() admin.Pipeline { return admin.OrderPipeline(*prefix, *orderGroup, *paymentGroup) }
}

func topicsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "check") {
		return fmt.Errorf("%w: topics: want `exactly topics create|check [flags]`", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("topics "+sub, flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	pipeline := pipelineFlags(fs)
	partitions := fs.Int("partitions", 6, "partitions of the orders topic; every other topic wants its input's count")
	replication := fs.Int("replication-factor", -1, "replication factor of every topic (-1: the brokers' default.replication.factor)")
	minISR := fs.Int("min-insync-replicas", 0, "min.insync.replicas set on created topics and wanted at least (0: not set, not checked)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *replication < -1 || *replication > 32767 {
		return fmt.Errorf("%w: --replication-factor: want -1 or 1..32767, got %d", errUsage, *replication)
	}
	if *partitions < 1 || *partitions > 100000 {
		return fmt.Errorf("%w: --partitions: want 1..100000, got %d", errUsage, *partitions)
	}
	cfg := admin.TopicsConfig{Partitions: int32(*partitions), ReplicationFactor: int16(*replication), MinInsyncReplicas: *minISR}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	cl, err := client(*brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	run := admin.CheckTopics
	if sub == "create" {
		run = admin.CreateTopics
	}
	r, err := run(ctx, cl, pipeline(), cfg)
	if err != nil {
		return fmt.Errorf("topics %s: %w", sub, err)
	}
	if *asJSON {
		err = writeJSON(stdout, r)
	} else {
		err = renderTopics(stdout, r)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return &exitError{code: exitMismatch, err: fmt.Errorf("topics %s: %d mismatches", sub, len(r.Mismatches))}
	}
	return nil
}

func renderTopics(w io.Writer, r *admin.TopicsReport) error {
	for _, t := range r.Created {
		fmt.Fprintf(w, "created %s\n", t)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tROLE\tPARTITIONS\tWANT\tRF\tMIN ISR\tCLEANUP")
	for _, t := range r.Topics {
		if !t.Exists {
			fmt.Fprintf(tw, "%s\t%s\tmissing\t%d\t\t\t\n", t.Topic, t.Role, t.WantPartitions)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", t.Topic, t.Role, t.Partitions, t.WantPartitions, t.ReplicationFactor, t.MinInsyncReplicas, t.CleanupPolicy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "topics: OK")
		return err
	}
	fmt.Fprintf(w, "topics: %d mismatches\n", len(r.Mismatches))
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "  %-20s %s\n", m.Kind, m)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
