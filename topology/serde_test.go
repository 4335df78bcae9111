package topology_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func roundtrip[T any](t *testing.T, s topology.Serde[T], v T) {
	t.Helper()
	b, err := s.Encode(v)
	require.NoError(t, err)
	got, err := s.Decode(b)
	require.NoError(t, err)
	require.Equal(t, v, got)
}

func TestSerdeRoundtrip(t *testing.T) {
	t.Parallel()
	type nested struct {
		Name  string            `json:"name"`
		Tags  []string          `json:"tags"`
		Attrs map[string]int    `json:"attrs"`
		Inner *order            `json:"inner,omitempty"`
		Extra map[string]string `json:"extra,omitempty"`
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Bytes/nil", func(t *testing.T) { roundtrip(t, topology.Bytes(), nil) }},
		{"Bytes/data", func(t *testing.T) { roundtrip(t, topology.Bytes(), []byte{0, 1, 2, 0xff}) }},
		{"String/empty", func(t *testing.T) { roundtrip(t, topology.String(), "") }},
		{"String/ascii", func(t *testing.T) { roundtrip(t, topology.String(), "hello") }},
		{"String/utf8", func(t *testing.T) { roundtrip(t, topology.String(), "héllo, 世界 ✓") }},
		{"String/nul bytes", func(t *testing.T) { roundtrip(t, topology.String(), "a\x00b") }},
		{"Int64/zero", func(t *testing.T) { roundtrip(t, topology.Int64(), 0) }},
		{"Int64/one", func(t *testing.T) { roundtrip(t, topology.Int64(), 1) }},
		{"Int64/minus one", func(t *testing.T) { roundtrip(t, topology.Int64(), -1) }},
		{"Int64/max", func(t *testing.T) { roundtrip(t, topology.Int64(), math.MaxInt64) }},
		{"Int64/min", func(t *testing.T) { roundtrip(t, topology.Int64(), math.MinInt64) }},
		{"JSON/struct", func(t *testing.T) {
			roundtrip(t, topology.JSON[order](), order{ID: "o1", Customer: "c", Amount: -3})
		}},
		{"JSON/zero struct", func(t *testing.T) { roundtrip(t, topology.JSON[order](), order{}) }},
		{"JSON/nested", func(t *testing.T) {
			roundtrip(t, topology.JSON[nested](), nested{
				Name: "n", Tags: []string{"a", "b"}, Attrs: map[string]int{"x": 1},
				Inner: &order{ID: "i"},
			})
		}},
		{"JSON/pointer", func(t *testing.T) { roundtrip(t, topology.JSON[*order](), &order{ID: "p"}) }},
		{"JSON/nil pointer", func(t *testing.T) { roundtrip[*order](t, topology.JSON[*order](), nil) }},
		{"JSON/map", func(t *testing.T) { roundtrip(t, topology.JSON[map[string]int64](), map[string]int64{"a": 1}) }},
		{"JSON/string", func(t *testing.T) { roundtrip(t, topology.JSON[string](), `quote " and \ slash`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

func TestInt64Encoding(t *testing.T) {
	t.Parallel()
	s := topology.Int64()
	b, err := s.Encode(0x0102030405060708)
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8}, b, "big-endian")

	// Byte order is numeric order for non-negative values.
	prev, err := s.Encode(0)
	require.NoError(t, err)
	for _, v := range []int64{1, 255, 256, 1 << 32, math.MaxInt64} {
		cur, err := s.Encode(v)
		require.NoError(t, err)
		require.Negative(t, bytes.Compare(prev, cur), "encode(%d)", v)
		prev = cur
	}
}

func TestInt64RejectsWrongLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one", []byte{1}},
		{"seven", make([]byte, 7)},
		{"nine", make([]byte, 9)},
		{"sixteen", make([]byte, 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := topology.Int64().Decode(tt.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), "want 8 bytes")
			require.Zero(t, v)
		})
	}
}

func TestBytesDecodeCopies(t *testing.T) {
	t.Parallel()
	in := []byte("hello")
	got, err := topology.Bytes().Decode(in)
	require.NoError(t, err)
	in[0] = 'J'
	require.Equal(t, []byte("hello"), got, "Decode must not alias its input")

	got, err = topology.Bytes().Decode(nil)
	require.NoError(t, err)
	require.Nil(t, got)
}

// TestBytesEncodeCopies: Encode returned the caller's slice, and the
// runtime holds encoded keys and values until the changelog record and the
// output are produced, so a caller that reused its buffer for the next write
// of the same record changed the earlier write (a store value, a changelog
// record, an output) behind the engine's back.
func TestBytesEncodeCopies(t *testing.T) {
	t.Parallel()
	buf := []byte("first")
	got, err := topology.Bytes().Encode(buf)
	require.NoError(t, err)
	copy(buf, "XXXXX")
	require.Equal(t, []byte("first"), got, "Encode must not alias its input")

	got, err = topology.Bytes().Encode(nil)
	require.NoError(t, err)
	require.Nil(t, got, "a nil value (a tombstone) stays nil")
	got, err = topology.Bytes().Encode([]byte{})
	require.NoError(t, err)
	require.NotNil(t, got, "an empty value stays empty, not a tombstone")
}

// TestBytesDecodeKeepsEmpty checks that an empty, non-nil input stays
// empty and non-nil.
//
// Regression (was a bug in serde.go, bytesSerde.Decode, line 38,
// fixed since): append([]byte(nil), b...) returns nil when b is empty, so
// Decode([]byte{}) returns nil although Decode explicitly keeps nil apart
// from non-nil. In Kafka a nil value is a tombstone and an empty value is
// not: a source -> sink pass-through with Bytes turns every empty-valued
// record into a tombstone (see the pass-through case below). Fix: return
// bytes.Clone(b), nil (Clone keeps nil as nil and empty as empty).
func TestBytesDecodeKeepsEmpty(t *testing.T) {
	t.Parallel()
	t.Run("decode", func(t *testing.T) {
		t.Parallel()
		got, err := topology.Bytes().Decode([]byte{})
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Empty(t, got)
	})
	t.Run("pass-through", func(t *testing.T) {
		t.Parallel()
		b := topology.NewBuilder()
		topology.Source(b, "in", "in", topology.Bytes(), topology.Bytes())
		topology.Sink(b, "copy", "out", topology.Bytes(), topology.Bytes(), topology.Parents("in"))
		top := mustBuild(t, b)
		rt := newFakeRuntime()
		require.NoError(t, top.Dispatch(t.Context(), rt, &topology.Input{Topic: "in", Key: []byte("k"), Value: []byte{}}))
		require.Len(t, rt.emitted, 1)
		require.NotNil(t, rt.emitted[0].Value, "an empty value became a tombstone")
	})
}

func TestJSONDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty, not null", []byte{}},
		{"truncated", []byte(`{"id":`)},
		{"wrong type", []byte(`{"amount":"x"}`)},
		{"array for struct", []byte(`[]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := topology.JSON[order]().Decode(tt.in)
			require.Error(t, err)
		})
	}
}

// TestJSONTombstone: a Kafka tombstone (nil value) is a delete, not a bad
// record. Before, JSON's Decode(nil) failed ("unexpected end of JSON
// input"), so every tombstone of a compacted input topic was dead-lettered.
// Now nil and JSON null are the same: Decode(nil) is T's zero value, and a
// value encoding to JSON null encodes to nil (a tombstone).
func TestJSONTombstone(t *testing.T) {
	t.Parallel()
	p, err := topology.JSON[*order]().Decode(nil)
	require.NoError(t, err)
	require.Nil(t, p)
	o, err := topology.JSON[order]().Decode(nil)
	require.NoError(t, err)
	require.Equal(t, order{}, o)

	b, err := topology.JSON[*order]().Encode(nil)
	require.NoError(t, err)
	require.Nil(t, b, "a nil pointer encodes to a tombstone")
	b, err = topology.JSON[map[string]int]().Encode(nil)
	require.NoError(t, err)
	require.Nil(t, b)
	b, err = topology.JSON[order]().Encode(order{})
	require.NoError(t, err)
	require.NotNil(t, b, "a zero struct is a value, not a tombstone")
}

func TestJSONEncodeError(t *testing.T) {
	t.Parallel()
	_, err := topology.JSON[func()]().Encode(func() {})
	require.Error(t, err)
	_, err = topology.JSON[float64]().Encode(math.NaN())
	require.Error(t, err)
}

func TestSerdeFuncs(t *testing.T) {
	t.Parallel()
	s := topology.SerdeFuncs[int]{
		EncodeFunc: func(v int) ([]byte, error) { return []byte{byte(v)}, nil },
		DecodeFunc: func(b []byte) (int, error) { return int(b[0]), nil },
	}
	var _ topology.Serde[int] = s
	roundtrip(t, topology.Serde[int](s), 42)
}
