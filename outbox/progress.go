package outbox

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

	"github.com/exactly-stream/exactly/exactlytest"
)

// The progress topic holds one record per relay: key the relay's name,
// value the ids the relay's last committed batch published, as ranges
// ("3-7,9,12-15": every id of a range was in the batch). It is compacted,
// so its last committed record per key is the relay's progress. It is
// written in the batch's own Kafka transaction, so it is committed if and
// only if the batch's records are.

// idRange is the ids lo..hi, both included.
type idRange struct{ lo, hi int64 }

// ranges returns the sorted ids as ranges of consecutive ids.
func ranges(ids []int64) []idRange {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var out []idRange
	for _, id := range ids {
		if n := len(out); n > 0 && out[n-1].hi+1 == id {
			out[n-1].hi = id
			continue
		}
		out = append(out, idRange{id, id})
	}
	return out
}

func formatRanges(rs []idRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.lo, 10))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(r.hi, 10))
		}
	}
	return b.String()
}

func parseRanges(s string) ([]idRange, error) {
	if s == "" {
		return nil, nil
	}
	var out []idRange
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("progress record %q: %w", s, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseInt(b, 10, 64); err != nil || hi < lo {
				return nil, fmt.Errorf("progress record %q: bad range %q", s, part)
			}
		}
		out = append(out, idRange{lo, hi})
	}
	return out, nil
}

// progressRecord is the record saying that the batch of ids was published.
func (c *cfg) progressRecord(ids []int64) *kgo.Record {
	return &kgo.Record{
		Topic: c.progressTopic,
		Key:   []byte(c.name),
		Value: []byte(formatRanges(ranges(ids))),
	}
}

// ensureProgressTopic creates the progress topic (one partition,
// compacted) when it is missing.
func (r *Relay) ensureProgressTopic(ctx context.Context) error {
	compact := "compact"
	_, err := r.adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, r.cfg.progressTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating the progress topic %s: %w", r.cfg.progressTopic, err)
	}
	return nil
}

// readProgress returns the ids the relay's last committed batch published
// (none when it never committed one). It reads with read_committed up to
// the end offsets listed when it starts; the caller has initialized the
// transactional ID first, so no transaction of this relay is open.
func (r *Relay) readProgress(ctx context.Context) ([]idRange, error) {
	ends, err := r.adm.ListEndOffsets(ctx, r.cfg.progressTopic)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", r.cfg.progressTopic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", r.cfg.progressTopic, err)
	}
	hwm := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { hwm[o.Partition] = o.Offset })
	var last string
	var found bool
	opts := exactlytest.ReadOptions{Ends: hwm, Timeout: max(time.Minute, 2*r.cfg.txnTimeout)}
	err = exactlytest.ReadCommittedFunc(ctx, r.cl, r.cfg.progressTopic, opts, func(rec *kgo.Record) error {
		if string(rec.Key) == r.cfg.name {
			last, found = string(rec.Value), true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading progress from %s: %w", r.cfg.progressTopic, err)
	}
	if !found {
		return nil, nil
	}
	return parseRanges(last)
}
