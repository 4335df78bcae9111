package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ResetState makes Run start by resetting the application's state: it
// deletes the changelog topics, wipes this instance's local state, creates
// the changelogs again and writes into them offset records at the group's
// committed offsets, so that state is rebuilt from the input from those
// offsets on. This is the explicit way out of ErrStateAhead after an operator
// moved the group's offsets back. Run it on one instance while every other
// instance of the application is stopped, then start the others normally
// (their local state is wiped by their restore). The default value is false.
func ResetState(reset bool) Opt { return opt(func(c *cfg) { c.resetState = reset }) }

// resetState carries out ResetState; see there.
func (p *Processor) resetState(ctx context.Context) error {
	topics := make([]string, 0, len(p.changelogs))
	for _, t := range p.changelogs {
		topics = append(topics, t)
	}
	p.cfg.logger.Warn("resetting state: deleting changelogs and local state", "changelogs", topics)
	if err := p.deleteTopics(ctx, topics); err != nil {
		return err
	}
	for _, store := range p.topo.StoreNames() {
		if err := p.wipeStore(store); err != nil {
			return err
		}
	}
	if _, err := p.ensureTopics(ctx); err != nil {
		return err
	}
	return p.seedOffsetRecords(ctx)
}

// deleteTopics deletes topics and waits until they are gone: Kafka deletes
// asynchronously, and a topic marked for deletion cannot be created again.
func (p *Processor) deleteTopics(ctx context.Context, topics []string) error {
	resps, err := p.admin.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("deleting changelogs: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("deleting changelog %s: %w", r.Topic, r.Err)
		}
	}
	return p.retry(ctx, "waiting for changelog deletion", func() error {
		details, err := p.admin.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		for _, t := range topics {
			if d, ok := details[t]; ok && d.Err == nil {
				return fmt.Errorf("changelog %s still exists", t)
			}
		}
		return nil
	})
}

func (p *Processor) wipeStore(store string) error {
	parts, err := p.db.Load().Partitions(store)
	if err != nil {
		return err
	}
	for _, part := range parts {
		if err := p.db.Load().WipePartition(store, part); err != nil {
			return err
		}
		// The task's stream time goes with the state it was kept with.
		for _, src := range append(p.topo.StoreSources(store), streamTimeTopic) {
			if err := p.db.Load().DeleteInputCheckpoint(inputCheckpointName(store, src), part); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedOffsetRecords writes, for every input partition with a committed
// offset, its offset record into the fresh changelogs: the restore
// completion rule then sees empty state as the state at those offsets.
func (p *Processor) seedOffsetRecords(ctx context.Context) error {
	committed, err := p.committedOffsets(ctx, p.adminCl)
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At <= 0 {
			return
		}
		for _, store := range p.storesOf[o.Topic] {
			r := offsetRecord(o.Topic, o.At-1)
			r.Topic, r.Partition = p.changelogs[store], o.Partition
			recs = append(recs, r)
		}
	})
	if len(recs) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.cfg.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(p.kgoLogger())}, p.cfg.kgoOpts...)...)
	if err != nil {
		return fmt.Errorf("%w: creating reset producer: %w", ErrConfig, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing offset records into the new changelogs: %w", err)
	}
	p.cfg.logger.Warn("state reset: offset records written", "records", len(recs))
	return nil
}
