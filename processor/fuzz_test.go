package processor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzParseOffsetRecord: parsing a changelog record never panics, a record
// without the offset header is never taken for an offset record, and every
// offset record parsed re-encodes to the same bytes.
func FuzzParseOffsetRecord(f *testing.F) {
	r := offsetRecord("orders", 42)
	f.Add(r.Key, r.Value, true)
	f.Add(r.Key, r.Value, false)
	f.Add([]byte("\x00exactly.offset/"), []byte{0, 0, 0, 0, 0, 0, 0, 0}, true)
	f.Add([]byte("customer-7"), []byte(`{"n":1}`), true)
	f.Add([]byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, key, value []byte, header bool) {
		rec := &kgo.Record{Key: key, Value: value}
		if header {
			rec.Headers = []kgo.RecordHeader{{Key: offsetHeader}}
		}
		topic, off, ok, err := parseOffsetRecord(rec)
		if !header {
			require.False(t, ok)
			require.NoError(t, err)
			return
		}
		require.True(t, ok)
		if err != nil {
			return
		}
		again := offsetRecord(topic, off)
		require.Equal(t, key, again.Key)
		require.Equal(t, value, again.Value)
	})
}
