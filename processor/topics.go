package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopics checks the source topics (they must exist and agree on a
// partition count) and creates, when allowed, the changelog, sink and
// dead-letter topics with that count. An existing changelog must have the
// same partition count and be compacted: a task owns partition p of the
// input and of every changelog.
func (p *Processor) ensureTopics(ctx context.Context) (int32, error) {
	sources := p.topo.SourceTopics()
	details, err := p.admin.ListTopics(ctx, sources...)
	if err != nil {
		return 0, fmt.Errorf("listing source topics: %w", err)
	}
	n := int32(-1)
	for _, t := range sources {
		d, ok := details[t]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("%w: source topic %s: missing or unreadable (%w)", ErrConfig, t, errors.Join(d.Err, errMissing(ok)))
		}
		if n >= 0 && int32(len(d.Partitions)) != n {
			return 0, fmt.Errorf("%w: source topics are not co-partitioned: %s has %d partitions, others %d", ErrConfig, t, len(d.Partitions), n)
		}
		n = int32(len(d.Partitions))
	}
	for _, store := range p.topo.StoreNames() {
		if err := p.ensureTopic(ctx, p.changelogs[store], n, true); err != nil {
			return 0, err
		}
	}
	for _, t := range append(p.topo.SinkTopics(), p.cfg.dlqTopic) {
		if err := p.ensureTopic(ctx, t, n, false); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (p *Processor) ensureTopic(ctx context.Context, topic string, partitions int32, changelog bool) error {
	details, err := p.admin.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing topic %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err == nil {
		if changelog {
			return p.checkChangelog(ctx, topic, int32(len(d.Partitions)), partitions)
		}
		return nil
	}
	if !p.cfg.createTopics {
		return fmt.Errorf("%w: topic %s does not exist and topic creation is off", ErrConfig, topic)
	}
	var configs map[string]*string
	if changelog {
		compact := "compact"
		configs = map[string]*string{"cleanup.policy": &compact}
	}
	resp, err := p.admin.CreateTopic(ctx, partitions, p.cfg.replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	p.cfg.logger.Info("created topic", "topic", topic, "partitions", partitions, "changelog", changelog)
	return nil
}

func (p *Processor) checkChangelog(ctx context.Context, topic string, have, want int32) error {
	if have != want {
		return fmt.Errorf("%w: changelog %s has %d partitions but the input has %d", ErrConfig, topic, have, want)
	}
	rcs, err := p.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describing changelog %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describing changelog %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && !slices.Contains(strings.Split(c.MaybeValue(), ","), "compact") {
			return fmt.Errorf("%w: changelog %s has cleanup.policy=%s, want compact", ErrConfig, topic, c.MaybeValue())
		}
	}
	return nil
}
