package state

import "sync"

// valueCache holds committed values of store keys that transactions read,
// in memory, so that reading a key again does not build Pebble's iterator
// stack over memtables and tables (about 2 µs a read). This is what Kafka
// Streams' record cache does for reads.
//
// The cache never holds anything the DB does not: a value enters it only
// from a read of the committed DB, and every write to committed data
// updates or drops what it covers. A staged batch that is applied updates
// the keys it wrote that the cache holds; a restore flush and a partition
// wipe or reset drop the partition's entries; a failed write drops
// everything. A read that raced with a write (the generation moved between
// its Pebble read and its insert) does not insert.
//
// Only values are cached, not absence: a key that is nowhere is looked up
// in Pebble every time, so a store of ever new keys (an order-id check)
// does not churn the cache.
//
// Eviction is random, by Go's map iteration order, once the cached keys
// and values exceed max bytes.
type valueCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	gen   uint64
	parts map[storePartition]map[string][]byte
}

type storePartition struct {
	store     string
	partition int32
}

// entryOverhead approximates what a map entry costs beyond its key and
// value bytes.
const entryOverhead = 64

func newValueCache(max int64) *valueCache {
	return &valueCache{max: max, parts: make(map[storePartition]map[string][]byte)}
}

// get returns the cached value of key in sp (valid until the next write of
// the key: callers copy it) and the generation to pass to put on a miss.
func (c *valueCache) get(sp storePartition, key []byte) (value []byte, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.parts[sp]; m != nil {
		value, ok = m[string(key)]
	}
	return value, ok, c.gen
}

// fill caches value, read from the committed DB at generation gen, unless
// a write happened since.
func (c *valueCache) fill(sp storePartition, key, value []byte, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	m := c.parts[sp]
	if m == nil {
		m = make(map[string][]byte)
		c.parts[sp] = m
	}
	if old, ok := m[string(key)]; ok {
		c.size -= int64(len(key) + len(old) + entryOverhead)
	}
	m[string(key)] = value
	c.size += int64(len(key) + len(value) + entryOverhead)
	c.evictLocked()
}

// written updates the cached keys of sp that a committed batch wrote: a
// put replaces the value (a copy the cache owns), a delete drops the key.
// Keys the cache does not hold stay out of it.
func (c *valueCache) written(sp storePartition, writes map[string]stagedValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	m := c.parts[sp]
	if m == nil {
		return
	}
	for k, w := range writes {
		old, ok := m[k]
		if !ok {
			continue
		}
		c.size -= int64(len(k) + len(old) + entryOverhead)
		if w.deleted {
			delete(m, k)
			continue
		}
		m[k] = w.value
		c.size += int64(len(k) + len(w.value) + entryOverhead)
	}
	c.evictLocked()
}

// dropPartition forgets every cached key of sp.
func (c *valueCache) dropPartition(sp storePartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.dropLocked(sp)
}

func (c *valueCache) dropLocked(sp storePartition) {
	for k, v := range c.parts[sp] {
		c.size -= int64(len(k) + len(v) + entryOverhead)
	}
	delete(c.parts, sp)
}

// dropAll forgets everything, after a write whose outcome is unknown.
func (c *valueCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.parts)
	c.size = 0
}

// evictLocked drops entries, in no particular order, until the cache is
// back under 90% of its budget.
func (c *valueCache) evictLocked() {
	if c.size <= c.max {
		return
	}
	target := c.max - c.max/10
	for sp, m := range c.parts {
		for k, v := range m {
			delete(m, k)
			c.size -= int64(len(k) + len(v) + entryOverhead)
			if c.size <= target {
				break
			}
		}
		if len(m) == 0 {
			delete(c.parts, sp)
		}
		if c.size <= target {
			return
		}
	}
}

// stats returns the number of cached keys and their bytes, for tests.
func (c *valueCache) stats() (keys int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.parts {
		keys += len(m)
	}
	return keys, c.size
}
