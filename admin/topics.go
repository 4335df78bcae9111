package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicsConfig is what the pipeline's topics should look like.
type TopicsConfig struct {
	// Partitions is the partition count of the pipeline's external inputs
	// (the inputs no stage writes; the orders topic of the reference
	// application). Every other topic wants the count of its stage's
	// first input, as the runtime creates them. It has no default: it
	// must be 1 to 100000.
	Partitions int32
	// ReplicationFactor of every topic, 1 to 32767, or -1 for the
	// brokers' default.replication.factor. 0 is invalid.
	ReplicationFactor int16
	// MinInsyncReplicas, when above 0, is set on created topics (Java
	// min.insync.replicas) and is the least a check accepts. The default
	// value is 0: not set, not checked.
	MinInsyncReplicas int
}

// Validate reports a setting out of range.
func (c TopicsConfig) Validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > 100000:
		return fmt.Errorf("partitions: want 1..100000, got %d", c.Partitions)
	case c.ReplicationFactor < -1 || c.ReplicationFactor == 0:
		return fmt.Errorf("replication factor: want -1 or 1..32767, got %d", c.ReplicationFactor)
	case c.MinInsyncReplicas < 0:
		return fmt.Errorf("min.insync.replicas: want 0 (unset) or more, got %d", c.MinInsyncReplicas)
	case c.ReplicationFactor > 0 && c.MinInsyncReplicas > int(c.ReplicationFactor):
		return fmt.Errorf("min.insync.replicas %d exceeds the replication factor %d: every acks=all write would fail", c.MinInsyncReplicas, c.ReplicationFactor)
	}
	return nil
}

// MismatchKind classifies a Mismatch.
type MismatchKind string

// Kinds of mismatch.
const (
	// MismatchMissing: the topic does not exist.
	MismatchMissing MismatchKind = "missing"
	// MismatchUnreadable: the topic's metadata or configs cannot be read.
	MismatchUnreadable MismatchKind = "unreadable"
	// MismatchPartitions: the partition count differs from its input's
	// (or, for the external input, from TopicsConfig.Partitions).
	MismatchPartitions MismatchKind = "partitions"
	// MismatchReplication: the replication factor differs.
	MismatchReplication MismatchKind = "replication-factor"
	// MismatchMinISR: min.insync.replicas is below the wanted value, or
	// above the replication factor (every acks=all write fails).
	MismatchMinISR MismatchKind = "min-insync-replicas"
	// MismatchCleanupPolicy: a changelog is not compacted.
	MismatchCleanupPolicy MismatchKind = "cleanup-policy"
)

// Mismatch is one way a topic differs from what the pipeline needs.
type Mismatch struct {
	Topic string       `json:"topic"`
	Kind  MismatchKind `json:"kind"`
	// Have and Want are the topic's value and the wanted one, where the
	// kind compares values (partition count, replication factor,
	// min.insync.replicas, cleanup.policy).
	Have string `json:"have,omitempty"`
	Want string `json:"want,omitempty"` // see Have
	// Message says it in a sentence, without the topic.
	Message string `json:"message"`
}

// String formats m as "topic: message".
func (m Mismatch) String() string { return m.Topic + ": " + m.Message }

// TopicState is a topic of the pipeline as the check found it.
type TopicState struct {
	Topic string `json:"topic"`
	// Role is input (no stage writes it), output or changelog.
	Role string `json:"role"`
	// Exists reports whether the topic exists (and its metadata could be
	// read).
	Exists bool `json:"exists"`
	// Partitions and ReplicationFactor are 0 when the topic is missing.
	Partitions int32 `json:"partitions"`
	// WantPartitions is the count the topic must have: its input's (see
	// TopicsConfig.Partitions); 0 when unknown.
	WantPartitions    int32 `json:"want_partitions"`
	ReplicationFactor int   `json:"replication_factor"`  // see Partitions
	MinInsyncReplicas int   `json:"min_insync_replicas"` // 0 when unknown
	// CleanupPolicy is the topic's cleanup.policy ("delete", "compact"
	// or both), empty when unknown.
	CleanupPolicy string `json:"cleanup_policy"`
}

// TopicsReport is the result of CheckTopics and CreateTopics.
type TopicsReport struct {
	// Topics are the pipeline's topics, in Pipeline.Topics order.
	Topics []TopicState `json:"topics"`
	// Created lists the topics CreateTopics created.
	Created []string `json:"created,omitempty"`
	// Mismatches are every way a topic differs from what the pipeline
	// needs, topic by topic.
	Mismatches []Mismatch `json:"mismatches"`
	// Notes are checks that could not run (the brokers' default
	// replication factor could not be read, say).
	Notes []string `json:"notes,omitempty"`
}

// OK reports whether no mismatch was found.
func (r *TopicsReport) OK() bool { return len(r.Mismatches) == 0 }

// CheckTopics compares the pipeline's topics with c and reports every
// mismatch: a missing topic, a partition count unlike its input's, a
// replication factor unlike c's (or the brokers' default), a
// min.insync.replicas below c's or above the replication factor, a
// changelog that is not compacted.
func CheckTopics(ctx context.Context, cl *kgo.Client, p Pipeline, c TopicsConfig) (*TopicsReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	s, err := readTopics(ctx, adm, p.Topics())
	if err != nil {
		return nil, err
	}
	r := &TopicsReport{Topics: []TopicState{}, Mismatches: []Mismatch{}}
	wantRF := int(c.ReplicationFactor)
	if wantRF < 0 {
		if wantRF, err = defaultReplication(ctx, adm); err != nil {
			wantRF = 0
			r.Notes = append(r.Notes, fmt.Sprintf("replication factor not checked: reading the brokers' default.replication.factor: %s", err))
		}
	}
	for _, t := range p.Topics() {
		r.check(p, s, t, c, wantRF)
	}
	return r, nil
}

// check appends topic t's state and mismatches.
func (r *TopicsReport) check(p Pipeline, s topicsSnapshot, t string, c TopicsConfig, wantRF int) {
	in := p.inputOf(t)
	st := TopicState{Topic: t, Role: p.role(t), WantPartitions: s.wantPartitions(p, t, c.Partitions)}
	d, ok := s.details[t]
	mis := func(kind MismatchKind, have, want any, format string, args ...any) {
		r.Mismatches = append(r.Mismatches, Mismatch{Topic: t, Kind: kind, Have: fmt.Sprint(have), Want: fmt.Sprint(want), Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		msg := "missing"
		if st.WantPartitions > 0 {
			msg = fmt.Sprintf("missing (want %d partitions)", st.WantPartitions)
		}
		mis(MismatchMissing, "", "", "%s", msg)
		r.Topics = append(r.Topics, st)
		return
	case d.Err != nil:
		mis(MismatchUnreadable, "", "", "metadata unreadable: %s", d.Err)
		r.Topics = append(r.Topics, st)
		return
	}
	st.Exists = true
	st.Partitions = int32(len(d.Partitions))
	st.ReplicationFactor = d.Partitions.NumReplicas()
	if st.WantPartitions > 0 && st.Partitions != st.WantPartitions {
		switch {
		case in == t:
			mis(MismatchPartitions, st.Partitions, st.WantPartitions, "has %d partitions, want %d", st.Partitions, st.WantPartitions)
		case st.Role == "input":
			mis(MismatchPartitions, st.Partitions, st.WantPartitions, "has %d partitions but %s, read by the same stage, has %d: a stage's inputs must be co-partitioned", st.Partitions, in, st.WantPartitions)
		default:
			mis(MismatchPartitions, st.Partitions, st.WantPartitions, "has %d partitions but its input %s has %d", st.Partitions, in, st.WantPartitions)
		}
	}
	if wantRF > 0 && st.ReplicationFactor != wantRF {
		mis(MismatchReplication, st.ReplicationFactor, wantRF, "replication factor %d, want %d", st.ReplicationFactor, wantRF)
	}
	cfg, cerr := s.configs[t], s.configErrs[t]
	if cerr != nil {
		mis(MismatchUnreadable, "", "", "configs unreadable: %s", cerr)
		r.Topics = append(r.Topics, st)
		return
	}
	st.CleanupPolicy = cfg["cleanup.policy"]
	st.MinInsyncReplicas, _ = strconv.Atoi(cfg["min.insync.replicas"])
	if c.MinInsyncReplicas > 0 && st.MinInsyncReplicas < c.MinInsyncReplicas {
		mis(MismatchMinISR, st.MinInsyncReplicas, c.MinInsyncReplicas, "min.insync.replicas=%d, want at least %d", st.MinInsyncReplicas, c.MinInsyncReplicas)
	}
	if st.ReplicationFactor > 0 && st.MinInsyncReplicas > st.ReplicationFactor {
		mis(MismatchMinISR, st.MinInsyncReplicas, st.ReplicationFactor, "min.insync.replicas=%d exceeds the replication factor %d: every acks=all write fails", st.MinInsyncReplicas, st.ReplicationFactor)
	}
	if p.IsChangelog(t) && !slices.Contains(strings.Split(st.CleanupPolicy, ","), "compact") {
		mis(MismatchCleanupPolicy, st.CleanupPolicy, "compact", "changelog has cleanup.policy=%s, want compact", st.CleanupPolicy)
	}
	r.Topics = append(r.Topics, st)
}

// CreateTopics creates the pipeline's missing topics, in data-flow order so
// that each gets its input's partition count (the external input gets
// c.Partitions), changelogs compacted, all with c's replication factor and
// min.insync.replicas. It never alters an existing topic; it then checks
// every topic as CheckTopics does. A topic created concurrently by someone
// else is not an error.
func CreateTopics(ctx context.Context, cl *kgo.Client, p Pipeline, c TopicsConfig) (*TopicsReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	s, err := readTopics(ctx, adm, p.Topics())
	if err != nil {
		return nil, err
	}
	var created, attempted []string
	for _, t := range p.Topics() {
		if d, ok := s.details[t]; ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			continue // exists (or is unreadable: the check reports it)
		}
		n := s.wantPartitions(p, t, c.Partitions)
		ok, err := createTopic(ctx, adm, t, n, c, p.IsChangelog(t))
		if err != nil {
			return nil, err
		}
		if ok {
			created = append(created, t)
		}
		attempted = append(attempted, t)
		s.details[t] = kadm.TopicDetail{Topic: t, Partitions: make(kadm.PartitionDetails, n)}
		for i := range n {
			s.details[t].Partitions[i] = kadm.PartitionDetail{Topic: t, Partition: i}
		}
	}
	// Wait for every topic this call tried to create, also those that
	// turned out to exist: on a real cluster a topic created a moment ago
	// elsewhere is known to the controller before every broker's metadata.
	if err := waitVisible(ctx, cl, attempted); err != nil {
		return nil, err
	}
	r, err := CheckTopics(ctx, cl, p, c)
	if err != nil {
		return nil, err
	}
	r.Created = created
	return r, nil
}

// createTopic creates one topic; it reports false if it already existed.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, c TopicsConfig, changelog bool) (bool, error) {
	configs := map[string]*string{}
	if changelog {
		configs["cleanup.policy"] = kadm.StringPtr("compact")
	}
	if c.MinInsyncReplicas > 0 {
		configs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(c.MinInsyncReplicas))
	}
	resp, err := adm.CreateTopic(ctx, partitions, c.ReplicationFactor, configs, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return true, nil
}

// waitVisible waits until the metadata shows every topic: a broker may
// answer metadata before a topic created on the controller reaches it, and
// the client caches metadata (kadm reads it through the cache for
// MetadataMinAge), so each try purges the topics from that cache first.
func waitVisible(ctx context.Context, cl *kgo.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cl.PurgeTopicsFromClient(slices.Clone(topics)...) // it sorts its argument
		ds, err := adm.ListTopics(ctx, topics...)
		if err == nil {
			err = ds.Error()
		}
		if err == nil && len(ds) == len(topics) {
			// The broker that answers DescribeConfigs may learn of the
			// topics later than the one that answered the metadata.
			err = configsReadable(ctx, adm, topics)
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for created topics %v to appear in the metadata and configs: %w", topics, errors.Join(ctx.Err(), err))
		case <-tick.C:
		}
	}
}

// topicsSnapshot is the metadata and configs of a set of topics.
type topicsSnapshot struct {
	details    kadm.TopicDetails
	configs    map[string]map[string]string // topic -> key -> value
	configErrs map[string]error
}

// readTopics lists topics and describes the configs of those that exist.
// configsReadable returns nil when the configs of every topic can be
// described.
func configsReadable(ctx context.Context, adm *kadm.Client, topics []string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return err
	}
	for _, t := range topics {
		rc, err := rcs.On(t, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return fmt.Errorf("configs of %s: %w", t, err)
		}
	}
	return nil
}

func readTopics(ctx context.Context, adm *kadm.Client, topics []string) (topicsSnapshot, error) {
	s := topicsSnapshot{configs: map[string]map[string]string{}, configErrs: map[string]error{}}
	var err error
	if s.details, err = adm.ListTopics(ctx, topics...); err != nil {
		return s, fmt.Errorf("listing topics: %w", err)
	}
	var existing []string
	for _, t := range topics {
		if d, ok := s.details[t]; ok && d.Err == nil {
			existing = append(existing, t)
		}
	}
	if len(existing) == 0 {
		return s, nil
	}
	// A broker may answer the configs of a topic the metadata (from
	// another broker) already lists with UNKNOWN_TOPIC_OR_PARTITION: it
	// has not learnt of the topic yet. Such topics are asked for again,
	// for configLag at most.
	deadline := time.Now().Add(configLag)
	for pending := existing; ; {
		rcs, err := adm.DescribeTopicConfigs(ctx, pending...)
		if err != nil && len(rcs) == 0 {
			return s, fmt.Errorf("describing topic configs: %w", err)
		}
		var again []string
		for _, t := range pending {
			rc, err := rcs.On(t, nil)
			if err == nil {
				err = rc.Err
			}
			if err != nil {
				s.configErrs[t] = err
				if errors.Is(err, kerr.UnknownTopicOrPartition) {
					again = append(again, t)
				}
				continue
			}
			delete(s.configErrs, t)
			m := map[string]string{}
			for _, c := range rc.Configs {
				m[c.Key] = c.MaybeValue()
			}
			s.configs[t] = m
		}
		if len(again) == 0 || time.Now().After(deadline) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, nil // the errors stay recorded
		case <-time.After(100 * time.Millisecond):
		}
		pending = again
	}
}

// configLag bounds how long readTopics asks again for the configs of a
// topic that the metadata lists and a broker does not know yet.
const configLag = 10 * time.Second

// wantPartitions is the partition count topic t must have: the actual
// count of the input it follows (inputOf), or what that input wants when it
// is missing, or external for an external input. A pipeline whose inputs
// follow each other in a cycle wants external.
func (s topicsSnapshot) wantPartitions(p Pipeline, t string, external int32) int32 {
	seen := map[string]bool{}
	for !seen[t] {
		seen[t] = true
		in := p.inputOf(t)
		if in == t {
			return external
		}
		if d, ok := s.details[in]; ok && d.Err == nil && len(d.Partitions) > 0 {
			return int32(len(d.Partitions))
		}
		t = in
	}
	return external
}

// defaultReplication reads default.replication.factor from a broker.
func defaultReplication(ctx context.Context, adm *kadm.Client) (int, error) {
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, err
	}
	if len(m.Brokers) == 0 {
		return 0, errors.New("no brokers in the metadata")
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, m.Brokers[0].NodeID)
	if err != nil {
		return 0, err
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, rc.Err
		}
		for _, c := range rc.Configs {
			if c.Key == "default.replication.factor" {
				n, err := strconv.Atoi(c.MaybeValue())
				if err != nil || n < 1 {
					return 0, fmt.Errorf("default.replication.factor=%q", c.MaybeValue())
				}
				// Capped like topic creation caps it on small clusters
				// (kfake; a one-broker development cluster).
				return min(n, len(m.Brokers)), nil
			}
		}
	}
	return 0, errors.New("the broker does not report default.replication.factor")
}
