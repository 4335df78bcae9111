package processor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
// (their local state is wiped by their restore). A reset that fails or is
// killed half way leaves changelogs without offset records, on which a
// normal start waits in its restore until the restore timeout: run the
// reset again, it finishes the job from any point. The default value is
// false.
func ResetState(reset bool) Opt { return opt(func(c *cfg) { c.resetState = reset }) }

// resetState carries out ResetState; see there. Every step is idempotent,
// so the whole reset is tried again, until the startup timeout, when a
// step fails on something a broker may get over (a broker restarting, a
// metadata answer that lags the controller).
func (p *Processor) resetState(ctx context.Context) error {
	topics := slices.Sorted(maps.Values(p.changelogs))
	p.cfg.logger.Warn("resetting state: deleting changelogs and local state", "changelogs", topics)
	deadline := time.Now().Add(p.cfg.startupTimeout)
	for attempt := 0; ; attempt++ {
		err := p.resetOnce(ctx, topics)
		if err == nil {
			p.cfg.logger.Warn("state reset: done", "changelogs", topics)
			return nil
		}
		if IsFatal(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("resetting state (run the reset again to finish it): %w", err)
		}
		p.cfg.logger.Warn("retrying", "what", "resetting state", "attempt", attempt+1, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return fmt.Errorf("resetting state (run the reset again to finish it): %w", err)
		}
	}
}

func (p *Processor) resetOnce(ctx context.Context, topics []string) error {
	n, err := p.sourcePartitions(ctx)
	if err != nil {
		return err
	}
	if err := p.deleteTopics(ctx, topics); err != nil {
		return err
	}
	for _, store := range p.topo.StoreNames() {
		if err := p.wipeStore(store); err != nil {
			return err
		}
	}
	ids, err := p.createChangelogs(ctx, topics, n)
	if err != nil {
		return err
	}
	if err := p.waitTopicIDs(ctx, ids); err != nil {
		return err
	}
	return p.seedOffsetRecords(ctx, ids)
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
		p.adminCl.PurgeTopicsFromClient(slices.Clone(topics)...) // it sorts its argument
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

// createChangelogs creates the changelogs anew and returns their topic
// IDs. It does not ask the metadata first whether they exist, as
// ensureTopics does: a broker that has not yet heard of the deletion
// would still list the deleted topic. The controller decides.
func (p *Processor) createChangelogs(ctx context.Context, topics []string, partitions int32) (map[string]kadm.TopicID, error) {
	compact := "compact"
	resps, err := p.admin.CreateTopics(ctx, partitions, p.cfg.replication, map[string]*string{"cleanup.policy": &compact}, topics...)
	if err != nil {
		return nil, fmt.Errorf("creating changelogs: %w", err)
	}
	ids := make(map[string]kadm.TopicID, len(topics))
	for _, t := range topics {
		r, ok := resps[t]
		switch {
		case !ok:
			return nil, fmt.Errorf("creating changelog %s: no answer for it", t)
		case r.Err != nil:
			// TopicAlreadyExists too: another instance started meanwhile,
			// or the deletion has not finished; the next try deletes again.
			return nil, fmt.Errorf("creating changelog %s: %w", t, r.Err)
		}
		ids[t] = r.ID
		p.cfg.logger.Info("created topic", "topic", t, "partitions", partitions, "changelog", true, "topic_id", r.ID)
	}
	return ids, nil
}

// waitTopicIDs waits until the metadata shows each topic of ids with that
// topic ID (a broker behind the controller may still show the deleted
// one) and a leader for every partition.
func (p *Processor) waitTopicIDs(ctx context.Context, ids map[string]kadm.TopicID) error {
	topics := slices.Sorted(maps.Keys(ids))
	return p.retry(ctx, "waiting for the new changelogs to show in the metadata", func() error {
		p.adminCl.PurgeTopicsFromClient(slices.Clone(topics)...)
		details, err := p.admin.ListTopics(ctx, topics...)
		if err == nil {
			err = visible(details, topics)
		}
		if err != nil {
			return err
		}
		for _, t := range topics {
			if got := details[t].ID; got != ids[t] {
				return fmt.Errorf("changelog %s: the metadata shows topic ID %s, not the new %s", t, got, ids[t])
			}
		}
		return nil
	})
}

// seedOffsetRecords writes, for every input partition with a committed
// offset, its offset record into the fresh changelogs: the restore
// completion rule then sees empty state as the state at those offsets.
// It then checks that they landed in the changelogs of ids: nothing else
// writes to them, so each seeded partition must end at least where its
// records took it. A producer whose metadata lagged could have written
// them into the deleted topic, acknowledged and gone.
func (p *Processor) seedOffsetRecords(ctx context.Context, ids map[string]kadm.TopicID) error {
	committed, err := p.committedOffsets(ctx, p.adminCl)
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	want := make(map[string]map[int32]int64)
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At <= 0 {
			return
		}
		for _, store := range p.storesOf[o.Topic] {
			r := offsetRecord(o.Topic, o.At-1)
			r.Topic, r.Partition = p.changelogs[store], o.Partition
			recs = append(recs, r)
			if want[r.Topic] == nil {
				want[r.Topic] = make(map[int32]int64)
			}
			want[r.Topic][r.Partition]++
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
	if err := p.checkSeeded(ctx, ids, want); err != nil {
		return err
	}
	p.cfg.logger.Warn("state reset: offset records written", "records", len(recs))
	return nil
}

// checkSeeded checks that every partition of want ends at or past its
// count of seeded records, and that the changelogs still have the topic
// IDs of ids.
func (p *Processor) checkSeeded(ctx context.Context, ids map[string]kadm.TopicID, want map[string]map[int32]int64) error {
	topics := slices.Sorted(maps.Keys(want))
	var lost error
	err := p.retry(ctx, "checking the offset records written into the new changelogs", func() error {
		ends, err := p.admin.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return err
		}
		for _, t := range topics {
			for part, n := range want[t] {
				if o, ok := ends.Lookup(t, part); !ok || o.Offset < n {
					// No use asking again: the reset starts over.
					lost = fmt.Errorf("%w: changelog %s partition %d ends at %d after %d offset records were written into it",
						errSeedsLost, t, part, o.Offset, n)
					return nil
				}
			}
		}
		return nil
	})
	if err == nil {
		err = lost
	}
	if err != nil {
		return err
	}
	return p.waitTopicIDs(ctx, ids)
}

// errSeedsLost: the offset records of a reset did not land in the new
// changelogs. The reset starts over.
var errSeedsLost = errors.New("offset records lost")
