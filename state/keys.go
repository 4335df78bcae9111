package state

import (
	"encoding/binary"
	"fmt"
)

// Key tags; see the key layout in the package documentation.
const (
	tagData            byte = 0x01
	tagCheckpoint      byte = 0x02
	tagInputCheckpoint byte = 0x03
	tagBinding         byte = 0x04
)

// partitionLen is the encoded length of a partition number.
const partitionLen = 4

// offsetLen is the encoded length of a checkpoint value.
const offsetLen = 8

// appendName appends tag | uvarint(len(name)) | name.
func appendName(b []byte, tag byte, name string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...)
}

// appendPartition appends tag | uvarint(len(name)) | name | uint32be(partition):
// the prefix of a store partition's data keys, or a whole checkpoint key.
func appendPartition(b []byte, tag byte, name string, partition int32) []byte {
	return binary.BigEndian.AppendUint32(appendName(b, tag, name), uint32(partition))
}

// appendDataKey appends the data key of key in store partition.
func appendDataKey(b []byte, store string, partition int32, key []byte) []byte {
	return append(appendPartition(b, tagData, store, partition), key...)
}

// prefixSuccessor returns the smallest key above every key starting with
// prefix, or nil (no bound) when prefix is all 0xff.
func prefixSuccessor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			s := append([]byte(nil), prefix[:i+1]...)
			s[i]++
			return s
		}
	}
	return nil
}

// decodePartition reads the partition number right after prefix in key.
func decodePartition(key []byte, prefixLen int) (int32, error) {
	if len(key) < prefixLen+partitionLen {
		return 0, fmt.Errorf("key %x has no partition: %w", key, ErrCorrupt)
	}
	return int32(binary.BigEndian.Uint32(key[prefixLen:])), nil
}

func encodeOffset(offset int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, offsetLen), uint64(offset))
}

func decodeOffset(v []byte) (int64, error) {
	if len(v) != offsetLen {
		return 0, fmt.Errorf("checkpoint value has %d bytes, want %d: %w", len(v), offsetLen, ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// checkPartition validates a store or topic name and a partition.
func checkPartition(kind, name string, partition int32) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: %w", kind, ErrInvalidArgument)
	}
	if partition < 0 {
		return fmt.Errorf("%s %q partition %d is negative: %w", kind, name, partition, ErrInvalidArgument)
	}
	return nil
}

func checkOffset(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("offset %d is negative: %w", offset, ErrInvalidArgument)
	}
	return nil
}
