package processor

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetHeader marks a changelog record as an offset record: its key names
// an input topic and its value holds the last input offset consumed from
// this partition by the transaction that wrote it. Keys of offset records
// start with a NUL byte and "exactly.offset/" so compaction keeps only the
// newest per input topic; the header, not the key, tells them apart from
// state records.
const offsetHeader = "exactly.offset"

const offsetKeyPrefix = "\x00exactly.offset/"

func offsetRecord(topic string, offset int64) *kgo.Record {
	return &kgo.Record{
		Key:     []byte(offsetKeyPrefix + topic),
		Value:   binary.BigEndian.AppendUint64(nil, uint64(offset)),
		Headers: []kgo.RecordHeader{{Key: offsetHeader}},
	}
}

// parseOffsetRecord returns the input topic and offset of an offset record;
// ok is false for state records.
func parseOffsetRecord(r *kgo.Record) (topic string, offset int64, ok bool, err error) {
	if len(r.Headers) == 0 || r.Headers[len(r.Headers)-1].Key != offsetHeader {
		return "", 0, false, nil
	}
	if len(r.Key) < len(offsetKeyPrefix) || string(r.Key[:len(offsetKeyPrefix)]) != offsetKeyPrefix || len(r.Value) != 8 {
		return "", 0, true, fmt.Errorf("malformed offset record at %s/%d@%d", r.Topic, r.Partition, r.Offset)
	}
	return string(r.Key[len(offsetKeyPrefix):]), int64(binary.BigEndian.Uint64(r.Value)), true, nil
}

// inputCheckpointName is the name under which a store's local copy of the
// offset record for an input topic is kept: one per store, because each
// store's changelog is restored on its own.
func inputCheckpointName(store, topic string) string { return store + "\x00" + topic }

// streamTimeTopic is the pseudo input topic under which a task's stream
// time (Unix nanoseconds) travels in its stores' changelogs, as an offset
// record: a NUL cannot start a Kafka topic name, so it names no input.
const streamTimeTopic = "\x00stream-time"
