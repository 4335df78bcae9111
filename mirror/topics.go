package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// copiedConfigs are the topic settings a target topic takes from its
// source topic when the source sets them on the topic.
var copiedConfigs = []string{
	"cleanup.policy",
	"retention.ms",
	"retention.bytes",
	"message.timestamp.type",
	"max.message.bytes",
	"min.compaction.lag.ms",
	"delete.retention.ms",
}

// sourceTopics lists the source topics selected by the configuration.
func (m *Mirror) sourceTopics(ctx context.Context) ([]string, error) {
	if m.re == nil {
		return m.cfg.topics, nil
	}
	all, err := m.srcAdm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing source topics: %w", err)
	}
	var out []string
	for _, t := range all.Names() {
		if m.cfg.selects(t, m.re) && t != m.cfg.offsetsTopic {
			out = append(out, t)
		}
	}
	return out, nil
}

// ensureTopics makes sure every source topic has its target topic, with
// the source's partition count (created with the source's settings when
// missing). A target topic with another partition count is a
// PartitionMismatchError. Topics already checked are skipped.
func (m *Mirror) ensureTopics(ctx context.Context, topics []string) error {
	var todo []string
	m.mu.Lock()
	for _, t := range topics {
		if !m.mu.ensured[t] {
			todo = append(todo, t)
		}
	}
	m.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	src, err := m.srcAdm.ListTopics(ctx, todo...)
	if err != nil {
		return fmt.Errorf("describing source topics: %w", err)
	}
	for _, t := range todo {
		d, ok := src[t]
		if !ok || d.Err != nil {
			return fmt.Errorf("describing source topic %s: %w", t, orMissing(d.Err))
		}
		if err := m.ensureTopic(ctx, t, int32(len(d.Partitions))); err != nil {
			return err
		}
		m.mu.Lock()
		m.mu.ensured[t] = true
		m.mu.Unlock()
	}
	return nil
}

func orMissing(err error) error {
	if err == nil {
		return kerr.UnknownTopicOrPartition
	}
	return err
}

// ensureTopic makes sure source topic t, with parts partitions, has its
// target topic.
func (m *Mirror) ensureTopic(ctx context.Context, t string, parts int32) error {
	name := m.cfg.targetTopic(t)
	n, err := targetPartitions(ctx, m.tgtAdm, name)
	if err != nil {
		return err
	}
	if n < 0 {
		configs, err := m.topicConfigs(ctx, t)
		if err != nil {
			return err
		}
		_, err = m.tgtAdm.CreateTopic(ctx, parts, -1, configs, name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance created it just now: wait (a while)
			// until it is visible here.
			for deadline := time.Now().Add(30 * time.Second); n < 0; {
				if time.Now().After(deadline) {
					return fmt.Errorf("target topic %s exists but is not visible after 30s", name)
				}
				if !sleep(ctx, 100*time.Millisecond) {
					return ctx.Err()
				}
				if n, err = targetPartitions(ctx, m.tgtAdm, name); err != nil {
					return err
				}
			}
		case err != nil:
			return fmt.Errorf("creating target topic %s: %w", name, err)
		default:
			m.cfg.logger.Info("created target topic", "topic", name, "partitions", parts, "configs", len(configs))
			return nil
		}
	}
	if n != parts {
		return &PartitionMismatchError{SourceTopic: t, TargetTopic: name, SourcePartitions: int(parts), TargetPartitions: int(n)}
	}
	return nil
}

// targetPartitions returns the partition count of topic, or -1 when it
// does not exist.
func targetPartitions(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	ds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describing target topic %s: %w", topic, err)
	}
	d, ok := ds[topic]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return -1, nil
	case d.Err != nil:
		return 0, fmt.Errorf("describing target topic %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// topicConfigs returns the copied settings that source topic t sets.
func (m *Mirror) topicConfigs(ctx context.Context, t string) (map[string]*string, error) {
	rcs, err := m.srcAdm.DescribeTopicConfigs(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("describing the configs of source topic %s: %w", t, err)
	}
	rc, err := rcs.On(t, nil)
	if err != nil {
		return nil, fmt.Errorf("describing the configs of source topic %s: %w", t, err)
	}
	out := make(map[string]*string)
	for _, c := range rc.Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil && slices.Contains(copiedConfigs, c.Key) {
			out[c.Key] = c.Value
		}
	}
	return out, nil
}

// ensureOffsetsTopic creates the compacted offsets topic on the target if
// it is missing, and returns its partition count.
func (m *Mirror) ensureOffsetsTopic(ctx context.Context) (int32, error) {
	name := m.cfg.offsetsTopic
	n, err := targetPartitions(ctx, m.tgtAdm, name)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		return n, m.checkOffsetsTopic(ctx)
	}
	compact := "compact"
	_, err = m.tgtAdm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, name)
	switch {
	case err == nil:
		m.cfg.logger.Info("created offsets topic", "topic", name)
		return 1, nil
	case !errors.Is(err, kerr.TopicAlreadyExists):
		return 0, fmt.Errorf("creating offsets topic %s: %w", name, err)
	}
	// Another instance created it; its metadata may lag a moment.
	for range 50 {
		if n, err = targetPartitions(ctx, m.tgtAdm, name); err != nil || n > 0 {
			return n, err
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("offsets topic %s exists but lists no partitions", name)
}

// checkOffsetsTopic refuses an offsets topic that may delete positions: an
// idle partition's last position is old, and losing it would copy the
// partition again from the start.
func (m *Mirror) checkOffsetsTopic(ctx context.Context) error {
	name := m.cfg.offsetsTopic
	rcs, err := m.tgtAdm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return fmt.Errorf("describing offsets topic %s: %w", name, err)
	}
	rc, err := rcs.On(name, nil)
	if err != nil {
		return fmt.Errorf("describing offsets topic %s: %w", name, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
			return configErr("offsets topic %s has cleanup.policy=%s, want compact: deleting old positions would copy idle partitions again", name, c.MaybeValue())
		}
	}
	return nil
}
