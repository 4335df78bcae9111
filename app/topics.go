package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/exactly-stream/exactly/admin"
)

// pipelineFlags adds --topic-prefix and the group flags (--group, or
// --<service>-group with several services) and returns the function that
// describes the program's pipeline with them: one admin.Stage per service,
// from its topology (admin.StageOf).
func (k *kit) pipelineFlags(fs *flagSet) func() (pipeline, error) {
	prefix := fs.String("topic-prefix", "", "prefix of every topic and default group name")
	groups := make([]*string, len(k.services))
	for i, s := range k.services {
		name, what := "group", "the group"
		if len(k.services) > 1 {
			name, what = s.Name+"-group", "group of the "+s.Name+" service"
		}
		groups[i] = fs.String(name, "", fmt.Sprintf("%s, if run with --group (default: <prefix>%s)", what, s.Group))
	}
	return func() (pipeline, error) {
		var p pipeline
		for i, s := range k.services {
			t, group, dlq, err := s.resolve(*prefix, *groups[i])
			if err != nil {
				return p, err
			}
			p.Stages = append(p.Stages, admin.StageOf(t, group, dlq))
			p.deadLetters = append(p.deadLetters, dlq)
		}
		return p, nil
	}
}

// pipeline is the program's pipeline with its dead-letter topics, which
// admin counts among the outputs.
type pipeline struct {
	admin.Pipeline
	deadLetters []string
}

// external reports whether topic is an input whose partition count the
// operator chooses: no stage writes it and no stage reads it after
// another input (to which it would be co-partitioned).
func (p pipeline) external(topic string) bool {
	for _, s := range p.Stages {
		if slices.Contains(s.Outputs, topic) || slices.Contains(s.Changelogs, topic) || slices.Index(s.Inputs, topic) > 0 {
			return false
		}
	}
	return slices.Contains(p.Inputs(), topic)
}

// adjust fits a topics report to the kit: dead-letter topics get that
// role, and unless the operator gave --partitions (exact), an existing
// external input's own count is the one wanted, so that the check holds
// the rest of the pipeline to the inputs as they are.
func (p pipeline) adjust(r *admin.TopicsReport, exact bool) {
	drop := map[string]bool{}
	for i := range r.Topics {
		t := &r.Topics[i]
		if slices.Contains(p.deadLetters, t.Topic) && t.Role == "output" {
			t.Role = "dead-letter"
		}
		if !exact && t.Exists && p.external(t.Topic) {
			t.WantPartitions = t.Partitions
			drop[t.Topic] = true
		}
	}
	r.Mismatches = slices.DeleteFunc(r.Mismatches, func(m admin.Mismatch) bool {
		return drop[m.Topic] && m.Kind == admin.MismatchPartitions
	})
}

// topicsConnectTimeout bounds how long `topics` waits for a secured
// broker's first answer before it goes on (and fails in its own way).
const topicsConnectTimeout = 30 * time.Second

// topicsSetup is `topics create|check`.
func (k *kit) topicsSetup(fs *flagSet, sub string) Runner {
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	pipeline := k.pipelineFlags(fs)
	partitions := fs.Int("partitions", 6, "partitions of each input topic (default: an existing input's own count, else 6); every other topic wants its input's count")
	replication := fs.Int("replication-factor", -1, "replication factor of every topic (-1: the brokers' default.replication.factor)")
	minISR := fs.Int("min-insync-replicas", 0, "min.insync.replicas set on created topics and wanted at least (0: not set, not checked)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	sec := securityFlags(fs)
	return func(ctx context.Context, stdout io.Writer) error {
		if *replication < -1 || *replication > 32767 {
			return fs.usagef("replication-factor", "want -1 or 1..32767, got %d", *replication)
		}
		if *partitions < 1 || *partitions > 100000 {
			return fs.usagef("partitions", "want 1..100000, got %d", *partitions)
		}
		cfg := admin.TopicsConfig{Partitions: int32(*partitions), ReplicationFactor: int16(*replication), MinInsyncReplicas: *minISR}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		p, err := pipeline()
		if err != nil {
			return err
		}
		cl, err := securedClient(fs, SplitBrokers(*brokers), sec)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := checkAuth(ctx, cl, sec, topicsConnectTimeout); err != nil {
			return fmt.Errorf("topics %s: %w", sub, err)
		}
		run := admin.CheckTopics
		if sub == "create" {
			run = admin.CreateTopics
		}
		r, err := run(ctx, cl, p.Pipeline, cfg)
		if err != nil {
			return fmt.Errorf("topics %s: %w", sub, err)
		}
		p.adjust(r, fs.given("partitions"))
		if *asJSON {
			err = writeJSON(stdout, r)
		} else {
			err = renderTopics(stdout, r)
		}
		if err != nil {
			return err
		}
		if !r.OK() {
			return &exitError{code: ExitViolations, err: fmt.Errorf("topics %s: %s", sub, mismatches(len(r.Mismatches)))}
		}
		return nil
	}
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
	fmt.Fprintf(w, "topics: %s\n", mismatches(len(r.Mismatches)))
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "  %-20s %s\n", m.Kind, m)
	}
	return nil
}

// mismatches counts n mismatches: "1 mismatch", "2 mismatches".
func mismatches(n int) string {
	if n == 1 {
		return "1 mismatch"
	}
	return fmt.Sprintf("%d mismatches", n)
}
