package mirror

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-stream/exactly/exactlytest"
)

// The offsets topic holds one record per source partition copied: key
// "<source topic>/<partition>" (topic names cannot contain '/'), value the
// next source offset to copy, in decimal. It is compacted, so its last
// record per key is the position. Records carry the headers
// exactly.mirror.instance (the instance that wrote them) and
// exactly.mirror.sync (a sync point, "<S> <T>": see Sync).

const (
	headerInstance = "exactly.mirror.instance"
	headerSync     = "exactly.mirror.sync"
)

// Sync is a sync point of one source partition and its target partition:
// the copies of the committed source records at offsets >= Source are
// exactly the committed data records of the target partition at offsets
// >= Target, in the same order. It holds from the moment it is written for
// as long as nothing but the mirror writes the target topic. Offset
// translation (see TranslateGroup) counts records from a sync point.
type Sync struct{ Source, Target int64 }

func (s Sync) String() string {
	return strconv.FormatInt(s.Source, 10) + " " + strconv.FormatInt(s.Target, 10)
}

func parseSync(v []byte) (Sync, bool) {
	a, b, ok := strings.Cut(string(v), " ")
	if !ok {
		return Sync{}, false
	}
	src, err1 := strconv.ParseInt(a, 10, 64)
	tgt, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || src < 0 || tgt < 0 {
		return Sync{}, false
	}
	return Sync{src, tgt}, true
}

// Position is a source partition's stored position.
type Position struct {
	// Next is the next source offset to copy.
	Next int64
	// Sync is the sync point written with it; HasSync is false for a
	// record without one (written by an older version).
	Sync    Sync
	HasSync bool
}

// tp is a source topic partition.
type tp struct {
	topic string
	part  int32
}

func (t tp) String() string { return t.topic + "/" + strconv.Itoa(int(t.part)) }

func positionKey(t tp) []byte { return []byte(t.String()) }

func parsePositionKey(k []byte) (tp, bool) {
	if len(k) > 0 && k[0] == 0 {
		return tp{}, false // a read barrier (barrierKey), no position
	}
	s := string(k)
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return tp{}, false
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil || p < 0 {
		return tp{}, false
	}
	return tp{s[:i], int32(p)}, true
}

// positionRecord is the offsets-topic record saying that t's next source
// offset to copy is next, with the sync point sync.
func positionRecord(topic string, parts int32, t tp, next int64, sync Sync, instance string) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: positionPartition(t, parts),
		Key:       positionKey(t),
		Value:     []byte(strconv.FormatInt(next, 10)),
		Headers: []kgo.RecordHeader{
			{Key: headerInstance, Value: []byte(instance)},
			{Key: headerSync, Value: []byte(sync.String())},
		},
	}
}

// positionPartition is the offsets-topic partition of t's positions: a
// stable hash of its key.
func positionPartition(t tp, parts int32) int32 {
	h := fnv.New32a()
	h.Write(positionKey(t))
	return int32(h.Sum32() % uint32(parts))
}

// ReadPositions returns the mirrored positions stored in offsetsTopic on
// the target (source topic -> partition -> next source offset). It reads
// with read_committed up to the high watermarks listed when it starts, so
// it returns only after every transaction open at that moment has ended:
// a position committed just before is never missed. A missing offsets
// topic is no positions at all.
func ReadPositions(ctx context.Context, target *kgo.Client, offsetsTopic string, timeout time.Duration) (map[string]map[int32]int64, error) {
	details, err := ReadPositionDetails(ctx, target, offsetsTopic, timeout)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[int32]int64, len(details))
	for t, parts := range details {
		out[t] = make(map[int32]int64, len(parts))
		for p, pos := range parts {
			out[t][p] = pos.Next
		}
	}
	return out, nil
}

// ReadPositionDetails is ReadPositions with each position's sync point.
// The mirror itself reads its positions to a barrier (Mirror.barrier), not
// to the listed high watermark.
func ReadPositionDetails(ctx context.Context, target *kgo.Client, offsetsTopic string, timeout time.Duration) (map[string]map[int32]Position, error) {
	ends, err := kadm.NewClient(target).ListEndOffsets(ctx, offsetsTopic)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", offsetsTopic, err)
	}
	hwm := make(map[int32]int64)
	var missing bool
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			missing = true
			return
		}
		hwm[o.Partition] = o.Offset
	})
	if missing && len(hwm) == 0 {
		return make(map[string]map[int32]Position), nil
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", offsetsTopic, err)
	}
	return readPositionsTo(ctx, target, offsetsTopic, timeout, hwm)
}

// readPositionsTo reads the positions in offsetsTopic with read_committed
// up to ends (per partition, the offset to read to, exclusive).
func readPositionsTo(ctx context.Context, target *kgo.Client, offsetsTopic string, timeout time.Duration, ends map[int32]int64) (map[string]map[int32]Position, error) {
	out := make(map[string]map[int32]Position)
	err := exactlytest.ReadCommittedFunc(ctx, target, offsetsTopic, exactlytest.ReadOptions{Ends: ends, Timeout: timeout}, func(r *kgo.Record) error {
		t, ok := parsePositionKey(r.Key)
		if !ok {
			return nil
		}
		next, err := strconv.ParseInt(string(r.Value), 10, 64)
		if err != nil {
			return nil
		}
		pos := Position{Next: next}
		for _, h := range r.Headers {
			if h.Key == headerSync {
				pos.Sync, pos.HasSync = parseSync(h.Value)
			}
		}
		if out[t.topic] == nil {
			out[t.topic] = make(map[int32]Position)
		}
		out[t.topic][t.part] = pos
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading positions from %s: %w", offsetsTopic, err)
	}
	return out, nil
}

// barrierKey is the key of instance's read barriers in the offsets topic:
// a NUL byte first, which no topic name holds, so no position key is one.
func barrierKey(instance string) []byte { return append([]byte{0}, "barrier:"+instance...) }

// barrier writes a record to every partition of the offsets topic and
// returns, per partition, the offset just past it: where a read of the
// positions has read everything written before. The write moves the high
// watermark: a broker restarted after a crash serves a partition only up
// to the high watermark it last checkpointed (every 5 s), which can lie
// below position records it acknowledged before, until a write or a
// follower's fetch moves it, and with one replica only a write does. Read
// to that stale end, the positions missed an earlier owner's last commits
// and the mirror copied their records again (TestMirrorTargetBrokerKilled,
// on the one-node target). The barrier is acknowledged by every in-sync
// replica, so the high watermark is past it, and past everything before
// it, when the write returns. Its value is a tombstone: compaction
// removes it. The client is not idempotent, so it needs no more than the
// Write permission on the offsets topic that the positions need anyway; a
// retry that writes a barrier twice is harmless.
func (m *Mirror) barrier(ctx context.Context) (map[int32]int64, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(m.cfg.targetBrokers...)}, clientOnly(m.cfg.targetOpts)...),
		kgo.ClientID(m.cfg.instance()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the offsets topic's barrier producer: %w", ErrConfig, err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, m.offsetsParts)
	for p := range m.offsetsParts {
		recs[p] = &kgo.Record{Topic: m.cfg.offsetsTopic, Partition: p, Key: barrierKey(m.cfg.instance())}
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return nil, fmt.Errorf("writing a read barrier to %s: %w", m.cfg.offsetsTopic, err)
	}
	ends := make(map[int32]int64, len(res))
	for _, r := range res {
		ends[r.Record.Partition] = r.Record.Offset + 1
	}
	return ends, nil
}
