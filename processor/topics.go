package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopics checks the source topics (they must exist and agree on a
// partition count) and creates, when allowed, the changelog, sink and
// dead-letter topics with that count. An existing changelog must have the
// same partition count and be compacted: a task owns partition p of the
// input and of every changelog.
func (p *Processor) ensureTopics(ctx context.Context) (int32, error) {
	n, err := p.sourcePartitions(ctx)
	if err != nil {
		return 0, err
	}
	var created []string
	for _, store := range p.topo.StoreNames() {
		c, err := p.ensureTopic(ctx, p.changelogs[store], n, true)
		if err != nil {
			return 0, err
		}
		if c {
			created = append(created, p.changelogs[store])
		}
	}
	for _, r := range p.topo.Repartitions() {
		if r.Partitions > 0 && r.Partitions != n {
			return 0, configErr("topology", "repartition %q asks for %d partitions but the input topics have %d: a task reads partition p of every input, so internal topics must be co-partitioned with the inputs", r.Name, r.Partitions, n)
		}
		c, err := p.ensureTopic(ctx, r.Topic, n, false)
		if err != nil {
			return 0, err
		}
		if c {
			created = append(created, r.Topic)
		}
		if err := p.checkPartitions(ctx, r.Topic, n); err != nil {
			return 0, err
		}
	}
	for _, t := range append(p.topo.SinkTopics(), p.cfg.dlqTopic) {
		c, err := p.ensureTopic(ctx, t, n, false)
		if err != nil {
			return 0, err
		}
		if c {
			created = append(created, t)
		}
	}
	if err := p.waitCreated(ctx, created); err != nil {
		return 0, err
	}
	return n, nil
}

// sourcePartitions returns the partition count of the source topics
// (not the repartition topics, which the processor creates): they must
// exist and agree on it.
func (p *Processor) sourcePartitions(ctx context.Context) (int32, error) {
	var sources []string
	for _, t := range p.topo.SourceTopics() {
		if !p.topo.IsRepartition(t) {
			sources = append(sources, t)
		}
	}
	details, err := p.admin.ListTopics(ctx, sources...)
	if err != nil {
		return 0, fmt.Errorf("listing source topics: %w", err)
	}
	n := int32(-1)
	differ := false
	counts := make([]string, 0, len(sources))
	for _, t := range sources {
		d, ok := details[t]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("%w: source topic %s: missing or unreadable (%w)", ErrConfig, t, errors.Join(d.Err, errMissing(ok)))
		}
		differ = differ || n >= 0 && int32(len(d.Partitions)) != n
		n = int32(len(d.Partitions))
		counts = append(counts, fmt.Sprintf("%s %d", t, len(d.Partitions)))
	}
	if differ {
		// A task reads partition p of every input (a join reads its
		// table there): the counts must agree.
		return 0, fmt.Errorf("%w: source topics are not co-partitioned, their partition counts differ (%s): a task reads partition p of each, so give them the same count", ErrConfig, strings.Join(counts, ", "))
	}
	return n, nil
}

// ensureTopic checks topic, or creates it when it is missing and creation
// is on; it reports whether it asked the brokers to create it.
func (p *Processor) ensureTopic(ctx context.Context, topic string, partitions int32, changelog bool) (bool, error) {
	details, err := p.admin.ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("listing topic %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err == nil {
		if changelog {
			return false, p.checkChangelog(ctx, topic, int32(len(d.Partitions)), partitions)
		}
		return false, nil
	}
	if !p.cfg.createTopics {
		return false, fmt.Errorf("%w: topic %s does not exist and topic creation is off", ErrConfig, topic)
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
		return false, fmt.Errorf("creating topic %s: %w", topic, err)
	}
	p.cfg.logger.Info("created topic", "topic", topic, "partitions", partitions, "changelog", changelog)
	return true, nil
}

// waitCreated waits, at most the startup timeout, until the metadata lists
// the topics just created, every partition with a leader. Without
// it, the restore that follows reads the metadata the client cached while
// the topics were missing and retries until that ages out (kadm reads
// metadata through the client's cache): seconds of warnings on every first
// start. Each try purges the topics from the cache first, since a broker
// may answer before the controller's news reached it.
func (p *Processor) waitCreated(ctx context.Context, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.startupTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		p.adminCl.PurgeTopicsFromClient(slices.Clone(topics)...) // it sorts its argument
		details, err := p.admin.ListTopics(ctx, topics...)
		if err == nil {
			err = visible(details, topics)
		}
		if err == nil {
			return nil
		}
		p.cfg.logger.Debug("waiting for created topics to show in the metadata", "topics", topics, "attempt", attempt+1, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return fmt.Errorf("waiting for created topics %v to show in the metadata: %w", topics, errors.Join(ctx.Err(), err))
		}
	}
}

// visible reports why details does not yet show topics with partitions
// that all have a leader, or nil. It does not compare partition counts: a
// topic someone else created meanwhile may differ, which is for the checks
// to report, not for this wait.
func visible(details kadm.TopicDetails, topics []string) error {
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || d.Err != nil:
			return fmt.Errorf("topic %s: %w", t, errors.Join(d.Err, errMissing(ok)))
		case len(d.Partitions) == 0:
			return fmt.Errorf("topic %s: no partitions yet", t)
		}
		for _, pd := range d.Partitions {
			switch {
			case pd.Err != nil:
				return fmt.Errorf("topic %s partition %d: %w", t, pd.Partition, pd.Err)
			case pd.Leader < 0:
				return fmt.Errorf("topic %s partition %d: no leader yet", t, pd.Partition)
			}
		}
	}
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
	if err == nil {
		err = rc.Err // an error for the topic alone: its configs are not there to check
	}
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

// checkPartitions checks that an existing internal topic has want
// partitions.
func (p *Processor) checkPartitions(ctx context.Context, topic string, want int32) error {
	details, err := p.admin.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing topic %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err == nil && len(d.Partitions) > 0 && int32(len(d.Partitions)) != want {
		return fmt.Errorf("%w: repartition topic %s has %d partitions but the input has %d", ErrConfig, topic, len(d.Partitions), want)
	}
	return nil
}
