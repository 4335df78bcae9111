package topology

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Serde encodes and decodes values of one type at the edges of a topology:
// sources decode, sinks and stores encode. Inside the engine everything is
// bytes.
//
// Encode must return a slice that the caller may keep and that nothing
// changes later: the engine holds encoded keys and values until the record
// is produced in the transaction, so a slice into a buffer the serde (or its
// caller) reuses would corrupt earlier writes. Decode must not retain b: the
// engine may reuse it after Decode returns.
type Serde[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// SerdeFuncs adapts two functions to a Serde.
type SerdeFuncs[T any] struct {
	EncodeFunc func(T) ([]byte, error)
	DecodeFunc func([]byte) (T, error)
}

// Encode calls EncodeFunc.
func (s SerdeFuncs[T]) Encode(v T) ([]byte, error) { return s.EncodeFunc(v) }

// Decode calls DecodeFunc.
func (s SerdeFuncs[T]) Decode(b []byte) (T, error) { return s.DecodeFunc(b) }

type bytesSerde struct{}

func (bytesSerde) Encode(v []byte) ([]byte, error) { return bytes.Clone(v), nil }
func (bytesSerde) Decode(b []byte) ([]byte, error) { return bytes.Clone(b), nil }

// Bytes returns a Serde that passes bytes through, copying both ways: the
// caller may reuse the slice it encoded as soon as Encode returns.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type stringSerde struct{}

func (stringSerde) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringSerde) Decode(b []byte) (string, error) { return string(b), nil }

// String returns a Serde for UTF-8 strings stored as their raw bytes.
func String() Serde[string] { return stringSerde{} }

type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("topology: int64 serde: want 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Int64 returns a Serde for int64 as 8 big-endian bytes (so byte order is
// numeric order for non-negative values).
func Int64() Serde[int64] { return int64Serde{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Encode(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil, err // a tombstone
	}
	return b, nil
}

func (s jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil // a tombstone
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, err
	}
	return v, nil
}

// JSON returns a Serde that encodes T with encoding/json.
//
// A Kafka null (a tombstone: a record whose value is nil, as a compacted
// topic's delete) and a JSON null are the same thing: Decode(nil) returns
// T's zero value without error, as it does for the JSON text null, and a
// value that encodes to JSON null (a nil pointer, map, slice or interface)
// encodes to nil. So a tombstone reaches a processor as a nil value and
// sending a nil value to a sink produces a tombstone, as in Kafka Streams.
// Use a pointer type T (JSON[*Order]) to tell a delete from a zero value.
// A nil slice that is not a tombstone (an empty, non-nil value) is not
// valid JSON and fails to decode.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }
