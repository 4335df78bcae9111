package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/kafkaauth"
)

// cluster is the cluster measured on: an embedded kfake cluster or the
// brokers given, with an admin client.
type cluster struct {
	brokers     []string
	security    kafkaauth.Config
	opts        []kgo.Opt      // the security's, for every client of the cluster
	fake        *kfake.Cluster // nil on a real cluster
	cl          *kgo.Client
	adm         *kadm.Client
	replication int16
	keep        bool
}

func openCluster(ctx context.Context, c *Config) (*cluster, error) {
	cc := &cluster{brokers: c.Brokers, security: c.Security, replication: c.Replication, keep: c.KeepTopics}
	opts, err := c.Security.Opts()
	if err != nil {
		return nil, fmt.Errorf("securing the connections: %w", err)
	}
	cc.opts = opts
	if len(cc.brokers) == 0 {
		fake, err := kfake.NewCluster(kfake.NumBrokers(c.KfakeBrokers))
		if err != nil {
			return nil, fmt.Errorf("starting the embedded cluster: %w", err)
		}
		cc.fake, cc.brokers = fake, fake.ListenAddrs()
	}
	cl, err := cc.client()
	if err != nil {
		cc.close()
		return nil, fmt.Errorf("creating the admin client: %w", err)
	}
	cc.cl, cc.adm = cl, kadm.NewClient(cl)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		aerr := kafkaauth.Check(cl, err, strings.Join(cc.brokers, ","))
		cc.close()
		if aerr != nil {
			return nil, aerr
		}
		return nil, fmt.Errorf("brokers %v: no answer: %w", cc.brokers, err)
	}
	return cc, nil
}

// seeds returns the options every client of the cluster starts with: its
// seed brokers and its connection security.
func (c *cluster) seeds() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.opts...)
}

// client returns a client of the cluster with opts added.
func (c *cluster) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(c.seeds(), opts...)...)
}

// describe names the cluster for the report.
func (c *cluster) describe(kfakeBrokers int) string {
	if c.fake != nil {
		return fmt.Sprintf("embedded kfake, %d brokers in this process", kfakeBrokers)
	}
	return "brokers " + strings.Join(c.brokers, ",")
}

func (c *cluster) close() {
	if c.cl != nil {
		c.cl.Close()
	}
	if c.fake != nil {
		c.fake.Close()
	}
}

// createTopic creates topic with partitions, compacted if asked.
func (c *cluster) createTopic(ctx context.Context, topic string, partitions int32, compact bool) error {
	var configs map[string]*string
	if compact {
		policy := "compact"
		configs = map[string]*string{"cleanup.policy": &policy}
	}
	resp, err := c.adm.CreateTopic(ctx, partitions, c.replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return c.waitTopic(ctx, topic, partitions)
}

// waitTopic waits until the topic's partitions have leaders: on a real
// cluster metadata reaches every broker a moment after creation.
func (c *cluster) waitTopic(ctx context.Context, topic string, partitions int32) error {
	var last error
	for range 100 {
		offs, err := c.adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		if err == nil && int32(len(offs[topic])) == partitions {
			return nil
		}
		last = err
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("topic %s not ready: %w", topic, errors.Join(last, errors.New("timed out")))
}

// cleanup deletes topics and groups of a finished run, unless asked to keep
// them. Failures only cost memory (kfake) or disk, so they are ignored.
func (c *cluster) cleanup(ctx context.Context, topics []string, groups ...string) {
	if c.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if len(topics) > 0 {
		_, _ = c.adm.DeleteTopics(ctx, topics...)
	}
	if len(groups) > 0 {
		_, _ = c.adm.DeleteGroups(ctx, groups...)
	}
}

// committedRecords returns how many input records of topic group has
// committed: the sum of its committed offsets (inputs start at offset 0).
func (c *cluster) committedRecords(ctx context.Context, group, topic string) (int64, error) {
	resps, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var n int64
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n, nil
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
