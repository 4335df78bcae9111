package state

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	defaultCacheSize    = 64 << 20
	defaultMemTableSize = 32 << 20
	defaultValueCache   = 16 << 20
	maxMemTableSize     = 4 << 30
)

// Options configures a DB. The zero value is valid: Open calls
// EnsureDefaults and then Validate on its own copy.
type Options struct {
	// FS is the filesystem holding the database. Tests use vfs.NewMem or
	// vfs.NewCrashableMem.
	//
	// The default value is vfs.Default.
	FS vfs.FS

	// CacheSize is the size in bytes of Pebble's block cache, for table
	// blocks (data, index and filter blocks). Pebble also accounts its
	// memtables against its cache, so the cache is created this much larger
	// than two memtables: otherwise the memtables alone fill it and every
	// read decompresses its blocks from the files again.
	//
	// The default value is 64 MiB.
	CacheSize int64

	// ValueCacheSize bounds, in bytes, the cache of committed values that
	// transactions read (keys, values and about 64 bytes a key): a key read
	// again is answered from memory instead of Pebble, and a committed write
	// of a cached key updates it. Absence is not cached. It corresponds to
	// the Java statestore.cache.max.bytes of Kafka Streams, for reads only:
	// writes are not held back or deduplicated, as every one is in the
	// transaction's changelog. A negative value turns the cache off.
	//
	// The default value is 16 MiB.
	ValueCacheSize int64

	// MemTableSize is the size in bytes of one Pebble memtable; Pebble keeps
	// up to two before stalling writes. It must be below 4 GiB.
	//
	// The default value is 32 MiB.
	MemTableSize uint64

	// Logger receives Pebble's log messages (attribute component=pebble).
	//
	// The default value is a logger that discards everything.
	Logger *slog.Logger
}

// EnsureDefaults fills every zero field with its default.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.ValueCacheSize == 0 {
		o.ValueCacheSize = defaultValueCache
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports an invalid field. It presumes EnsureDefaults was called.
func (o *Options) Validate() error {
	switch {
	case o.FS == nil:
		return fmt.Errorf("validating options: FS is nil: %w", ErrInvalidArgument)
	case o.Logger == nil:
		return fmt.Errorf("validating options: Logger is nil: %w", ErrInvalidArgument)
	case o.CacheSize < 0:
		return fmt.Errorf("validating options: CacheSize %d is negative: %w", o.CacheSize, ErrInvalidArgument)
	case o.MemTableSize >= maxMemTableSize:
		return fmt.Errorf("validating options: MemTableSize %d is not below 4 GiB: %w", o.MemTableSize, ErrInvalidArgument)
	}
	return nil
}

// pebbleOptions translates o. The caller owns cache and lock.
func (o *Options) pebbleOptions(cache *pebble.Cache, lock *pebble.Lock) *pebble.Options {
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		Logger:             pebbleLogger{o.Logger},
		Lock:               lock,
		FormatMajorVersion: pebble.FormatNewest,
	}
	// A Bloom filter per table (10 bits a key, 1% false positives) answers
	// most lookups of a key a table does not hold without reading its index
	// and data blocks: a store's point reads, and above all those of keys
	// that are nowhere, stay cheap as it grows. Levels below inherit it.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	return po
}
