package topology

import (
	"fmt"
	"math"
	"time"
)

// EndedAfter is Ended for the windows that end in (after, upTo]: it reads
// from after on, not from the first window the index ever held. A caller
// that closes windows as time passes knows that every window ending at or
// before its last bound is gone, and so skips the deletions (tombstones)
// those closes left in the index, which a scan from the start would walk
// again on every call.
func (s WindowStoreRef[K, V]) EndedAfter(c *Call, after, upTo time.Time, fn func(w Windowed[K], v V) (bool, error)) error {
	if after.UnixMilli() == math.MaxInt64 || !upTo.After(after) {
		return nil
	}
	lo := appendMillis([]byte{windowEndTag}, after.Add(time.Millisecond))
	hi := appendMillis([]byte{windowEndTag}, upTo.Add(time.Millisecond))
	if upTo.UnixMilli() == math.MaxInt64 {
		hi = []byte{windowEndTag + 1}
	}
	return s.endedRange(c, lo, hi, fn)
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
