package topology

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Window is a time window [Start, End): a record with timestamp ts is in
// it when Start <= ts < End. Windows have millisecond precision, as Kafka
// timestamps do. A session window (package dsl) is the exception: it is
// [first record, last record], both ends inclusive, as in Kafka Streams,
// so a session of one record has Start == End; Contains does not apply
// to it.
type Window struct {
	Start, End time.Time
}

// Contains reports whether ts is in w.
func (w Window) Contains(ts time.Time) bool { return !ts.Before(w.Start) && ts.Before(w.End) }

func (w Window) String() string {
	return "[" + w.Start.UTC().Format(time.RFC3339Nano) + ", " + w.End.UTC().Format(time.RFC3339Nano) + ")"
}

// Windowed is a key with its window: the key of a windowed aggregation's
// results.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// windowedLen is the length of the window suffix of an encoded Windowed
// key: start and end, big-endian int64 Unix milliseconds.
const windowedLen = 16

type windowedSerde[K any] struct{ ks Serde[K] }

// WindowedSerde encodes a Windowed[K] as the key encoded by ks followed by
// the window's start and end as big-endian signed 64-bit Unix
// milliseconds (16 bytes). The encoding is stable: consumers in any
// language read a windowed result's key as "all but the last 16 bytes are
// the key; then start, then end". Records keyed so hash by the whole
// encoding, so one key's windows spread over partitions (as Kafka
// Streams' windowed keys do).
func WindowedSerde[K any](ks Serde[K]) Serde[Windowed[K]] { return windowedSerde[K]{ks} }

func (s windowedSerde[K]) Encode(w Windowed[K]) ([]byte, error) {
	k, err := s.ks.Encode(w.Key)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(k)+windowedLen)
	b = append(b, k...)
	b = binary.BigEndian.AppendUint64(b, uint64(w.Window.Start.UnixMilli()))
	return binary.BigEndian.AppendUint64(b, uint64(w.Window.End.UnixMilli())), nil
}

func (s windowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < windowedLen {
		return w, fmt.Errorf("windowed key of %d bytes: shorter than its %d-byte window", len(b), windowedLen)
	}
	n := len(b) - windowedLen
	k, err := s.ks.Decode(b[:n])
	if err != nil {
		return w, err
	}
	start := int64(binary.BigEndian.Uint64(b[n:]))
	end := int64(binary.BigEndian.Uint64(b[n+8:]))
	if end < start {
		return w, fmt.Errorf("windowed key: window ends (%d ms) before it starts (%d ms)", end, start)
	}
	w.Key, w.Window = k, Window{time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC()}
	return w, nil
}

// Window store key layout (the bytes of the store's keys, and so of its
// changelog's keys; stable):
//
//	entry:     'w' | uvarint(len(key)) | key | start | end  -> value
//	end index: 'e' | end | uvarint(len(key)) | key | start  -> 0x01
//
// start and end are Unix milliseconds, big-endian with the sign bit
// flipped, so byte order is time order. The length prefix makes one key's
// windows a contiguous range, in start order; the end index lists every
// window in end order, so closing or expiring windows reads only those
// that ended.
//
//	mark:      'm' | name                                 -> a time (closing watermarks)
const (
	windowEntryTag = 'w'
	windowEndTag   = 'e'
	windowMarkTag  = 'm'
)

var windowIndexValue = []byte{1}

func appendMillis(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMilli())^(1<<63))
}

func readMillis(b []byte) time.Time {
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b) ^ (1 << 63))).UTC()
}

func appendKeyPrefix(b []byte, tag byte, key []byte) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

func windowEntryKey(key []byte, w Window) []byte {
	b := appendKeyPrefix(make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+16), windowEntryTag, key)
	return appendMillis(appendMillis(b, w.Start), w.End)
}

func windowEndKey(key []byte, w Window) []byte {
	b := appendMillis(append(make([]byte, 0, 9+binary.MaxVarintLen64+len(key)+8), windowEndTag), w.End)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return appendMillis(append(b, key...), w.Start)
}

var errWindowKey = errors.New("malformed window store key")

// parseEndKey returns the key and window of an end-index key.
func parseEndKey(b []byte) ([]byte, Window, error) {
	if len(b) < 9 || b[0] != windowEndTag {
		return nil, Window{}, errWindowKey
	}
	end := readMillis(b[1:9])
	n, m := binary.Uvarint(b[9:])
	if m <= 0 || uint64(len(b)-9-m) != n+8 {
		return nil, Window{}, errWindowKey
	}
	key := b[9+m : 9+m+int(n)]
	return key, Window{readMillis(b[9+m+int(n):]), end}, nil
}

// WindowStoreRef is a typed handle on a window store: values per key and
// window. Its methods are valid only inside a processor or punctuator
// that declared the store with Stores.
type WindowStoreRef[K, V any] struct {
	name string
	ks   Serde[K]
	vs   Serde[V]
}

// Name returns the store's name.
func (s WindowStoreRef[K, V]) Name() string { return s.name }

// Serdes returns the store's key and value serdes.
func (s WindowStoreRef[K, V]) Serdes() (Serde[K], Serde[V]) { return s.ks, s.vs }

// WindowStore declares a named window store: a value per key and window,
// read by key and window, by key over a time range (Fetch), and in order
// of window end (Ended), which is how windows are closed and expired at a
// cost proportional to the windows that ended, not to the store. It is
// changelog-backed and restored like any store; its changelog is
// compacted, and the store's expired windows leave it as tombstones when
// they are deleted (see DESIGN.md, "Windows", for why not time retention).
func WindowStore[K, V any](b *Builder, name string, ks Serde[K], vs Serde[V]) WindowStoreRef[K, V] {
	b.stores = append(b.stores, &store{name: name, keyType: typeOf[Windowed[K]](), valType: typeOf[V](), windowed: true})
	return WindowStoreRef[K, V]{name: name, ks: ks, vs: vs}
}

func (s WindowStoreRef[K, V]) encodeKey(key K) ([]byte, error) {
	k, err := s.ks.Encode(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key for window store %q: %w", s.name, err)
	}
	return k, nil
}

func checkWindow(store string, w Window) error {
	if w.End.Before(w.Start) {
		return fmt.Errorf("window store %q: window %s ends before it starts", store, w)
	}
	return nil
}

// Get reads key's value in window w, seeing this transaction's own earlier
// writes.
func (s WindowStoreRef[K, V]) Get(c *Call, key K, w Window) (V, bool, error) {
	var zero V
	k, err := s.encodeKey(key)
	if err != nil {
		return zero, false, err
	}
	b, ok, err := c.get(s.name, windowEntryKey(k, w))
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.vs.Decode(b)
	if err != nil {
		return zero, false, fmt.Errorf("decoding value from window store %q: %w", s.name, err)
	}
	return v, true, nil
}

// Put writes key's value in window w. A value the serde encodes as nil
// deletes it, as Delete does.
func (s WindowStoreRef[K, V]) Put(c *Call, key K, w Window, value V) error {
	if err := checkWindow(s.name, w); err != nil {
		return err
	}
	k, err := s.encodeKey(key)
	if err != nil {
		return err
	}
	v, err := s.vs.Encode(value)
	if err != nil {
		return fmt.Errorf("encoding value for window store %q: %w", s.name, err)
	}
	if v == nil {
		return s.del(c, k, w)
	}
	if err := c.put(s.name, windowEntryKey(k, w), v); err != nil {
		return err
	}
	return c.put(s.name, windowEndKey(k, w), windowIndexValue)
}

// Delete removes key's value in window w.
func (s WindowStoreRef[K, V]) Delete(c *Call, key K, w Window) error {
	k, err := s.encodeKey(key)
	if err != nil {
		return err
	}
	return s.del(c, k, w)
}

func (s WindowStoreRef[K, V]) del(c *Call, k []byte, w Window) error {
	if err := c.del(s.name, windowEntryKey(k, w)); err != nil {
		return err
	}
	return c.del(s.name, windowEndKey(k, w))
}

// Fetch calls fn, in order of window start (then end), for each window of
// key that starts in [from, to], with its value, until fn returns false
// or an error (which Fetch returns). Writes fn makes are not seen by the
// same Fetch.
func (s WindowStoreRef[K, V]) Fetch(c *Call, key K, from, to time.Time, fn func(w Window, v V) (bool, error)) error {
	k, err := s.encodeKey(key)
	if err != nil {
		return err
	}
	lo, hi := WindowKeyRange(k, from, to)
	var ferr error
	err = c.rangeKeys(s.name, lo, hi, func(bk, bv []byte) bool {
		_, w, ok := ParseWindowEntry(bk)
		if !ok {
			ferr = fmt.Errorf("window store %q: %w %x", s.name, errWindowKey, bk)
			return false
		}
		v, err := s.vs.Decode(bv)
		if err != nil {
			ferr = fmt.Errorf("decoding value from window store %q: %w", s.name, err)
			return false
		}
		var more bool
		more, ferr = fn(w, v)
		return more && ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// Ended calls fn, in order of window end (then key bytes, then start), for
// each window that ends at or before upTo, with its key and value, until
// fn returns false or an error (which Ended returns). It reads only the
// windows that ended: closing and expiring windows costs what they are,
// not the store's size. fn may Delete the window it is given (that is how
// windows close); the same Ended does not see writes fn makes.
//
// It starts at the earliest end. An operator that closes windows up to a
// watermark that only grows should use EndedBetween from its previous
// watermark: the end index entries of windows it deleted stay in Pebble as
// tombstones until compaction, and a scan from the earliest end steps over
// all of them.
func (s WindowStoreRef[K, V]) Ended(c *Call, upTo time.Time, fn func(w Windowed[K], v V) (bool, error)) error {
	return s.EndedBetween(c, time.UnixMilli(math.MinInt64), upTo, fn)
}

// EndedBetween is Ended for the windows that end in (after, upTo].
func (s WindowStoreRef[K, V]) EndedBetween(c *Call, after, upTo time.Time, fn func(w Windowed[K], v V) (bool, error)) error {
	if after.UnixMilli() == math.MaxInt64 || !upTo.After(after) {
		return nil
	}
	lo := []byte{windowEndTag}
	if after.UnixMilli() != math.MinInt64 {
		lo = appendMillis(lo, after.Add(time.Millisecond))
	}
	hi := appendMillis([]byte{windowEndTag}, upTo.Add(time.Millisecond))
	if upTo.UnixMilli() == math.MaxInt64 {
		hi = []byte{windowEndTag + 1}
	}
	return s.endedRange(c, lo, hi, fn)
}

// Mark returns the time stored under name for the task (false: none yet).
// Windowed operators keep their closing watermark so: the time up to
// which they closed windows, which stream time alone does not say once a
// wall clock closed some.
func (s WindowStoreRef[K, V]) Mark(c *Call, name string) (time.Time, bool, error) {
	b, ok, err := c.get(s.name, append([]byte{windowMarkTag}, name...))
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	if len(b) != 8 {
		return time.Time{}, false, fmt.Errorf("window store %q: mark %q has %d bytes, want 8", s.name, name, len(b))
	}
	return readMillis(b), true, nil
}

// SetMark stores t under name for the task.
func (s WindowStoreRef[K, V]) SetMark(c *Call, name string, t time.Time) error {
	return c.put(s.name, append([]byte{windowMarkTag}, name...), appendMillis(nil, t))
}

// WindowKeyRange returns the bounds [lo, hi) of the window store keys of
// key's windows that start in [from, to], for code that reads a window
// store's bytes (queries); key is encoded by the store's key serde.
func WindowKeyRange(key []byte, from, to time.Time) (lo, hi []byte) {
	prefix := appendKeyPrefix(nil, windowEntryTag, key)
	lo = appendMillis(slices.Clip(prefix), from)
	if to.UnixMilli() == math.MaxInt64 {
		return lo, prefixEnd(prefix)
	}
	return lo, appendMillis(slices.Clip(prefix), to.Add(time.Millisecond))
}

// ParseWindowEntry returns the key (encoded) and window of a window store
// key; ok is false for the store's other keys (its index and marks).
func ParseWindowEntry(storeKey []byte) (key []byte, w Window, ok bool) {
	if len(storeKey) < 1 || storeKey[0] != windowEntryTag {
		return nil, Window{}, false
	}
	n, m := binary.Uvarint(storeKey[1:])
	if m <= 0 || uint64(len(storeKey)-1-m) != n+16 {
		return nil, Window{}, false
	}
	rest := storeKey[1+m+int(n):]
	return storeKey[1+m : 1+m+int(n)], Window{readMillis(rest[:8]), readMillis(rest[8:])}, true
}

// prefixEnd returns the smallest key above every key starting with p.
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			e := append([]byte(nil), p[:i+1]...)
			e[i]++
			return e
		}
	}
	return nil
}

// endedRange calls fn for each window whose end-index key is in [lo, hi).
func (s WindowStoreRef[K, V]) endedRange(c *Call, lo, hi []byte, fn func(w Windowed[K], v V) (bool, error)) error {
	var ferr error
	err := c.rangeKeys(s.name, lo, hi, func(bk, _ []byte) bool {
		k, w, err := parseEndKey(bk)
		if err != nil {
			ferr = fmt.Errorf("window store %q: %w %x", s.name, err, bk)
			return false
		}
		bv, ok, err := c.get(s.name, windowEntryKey(k, w))
		if err != nil {
			ferr = err
			return false
		}
		if !ok {
			ferr = fmt.Errorf("window store %q: window %s of key %x is indexed but has no value", s.name, w, k)
			return false
		}
		key, err := s.ks.Decode(k)
		if err != nil {
			ferr = fmt.Errorf("decoding key from window store %q: %w", s.name, err)
			return false
		}
		v, err := s.vs.Decode(bv)
		if err != nil {
			ferr = fmt.Errorf("decoding value from window store %q: %w", s.name, err)
			return false
		}
		var more bool
		more, ferr = fn(Windowed[K]{key, w}, v)
		return more && ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}
