package bench

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

var chartOut = flag.String("chart-out", "", "also write the test chart to this PNG file, to look at")

func TestWriteChartIsAValidPNG(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, WriteChart(&b, sampleResults()))
	img, err := png.Decode(bytes.NewReader(b.Bytes()))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, chartW, chartH), img.Bounds())

	// Every series colour is drawn (lines, markers, legend), and the
	// background is white.
	seen := map[[3]uint32]bool{}
	for y := 0; y < chartH; y++ {
		for x := 0; x < chartW; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	require.True(t, seen[[3]uint32{255, 255, 255}])
	for _, s := range chartSeries {
		require.True(t, seen[[3]uint32{uint32(s.col.R), uint32(s.col.G), uint32(s.col.B)}], s.label)
	}
	if *chartOut != "" {
		require.NoError(t, os.WriteFile(filepath.Clean(*chartOut), b.Bytes(), 0o644))
	}
}

func TestWriteChartNeedsThroughput(t *testing.T) {
	t.Parallel()
	require.Error(t, WriteChart(&bytes.Buffer{}, &Results{}))
	require.Error(t, WriteChart(&bytes.Buffer{}, &Results{Throughput: []Cell{{TxnSize: 100}}}), "cells without figures")
}

func TestGlyphs(t *testing.T) {
	t.Parallel()
	for r, rows := range glyphRows {
		var n int
		for _, row := range bytes.Fields([]byte(rows)) {
			require.Len(t, row, glyphW, "glyph %q", r)
			n++
		}
		require.Equal(t, glyphH, n, "glyph %q", r)
	}
	for r := 'A'; r <= 'Z'; r++ {
		require.Contains(t, glyphs, r)
		require.NotZero(t, glyphs[r], "glyph %q has ink", r)
	}
	for r := '0'; r <= '9'; r++ {
		require.Contains(t, glyphs, r)
	}
	for _, r := range "()/.,:%-" {
		require.True(t, unicode.IsPunct(r) || unicode.IsSymbol(r))
		require.Contains(t, glyphs, r)
	}
	require.Equal(t, (3*6-1)*2, textWidth("abc", 2))
}

func TestNiceStepAndShortNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]float64{0.3: 0.5, 7: 10, 12: 20, 21000: 25000, 40000: 50000, 0: 1} {
		require.InDelta(t, want, niceStep(in), 1e-9, "%v", in)
	}
	for in, want := range map[float64]string{0: "0", 500: "500", 2500: "2.5K", 40000: "40K", 1.2e6: "1.2M", 2e6: "2M"} {
		require.Equal(t, want, shortNumber(in))
	}
}

func TestYAxis(t *testing.T) {
	t.Parallel()
	lin := newYAxis(8000, 30000)
	require.False(t, lin.log, "figures within a factor of 20 stay linear")
	require.InDelta(t, 0, lin.frac(0), 1e-9)
	require.InDelta(t, 1, lin.frac(lin.hi), 1e-9)

	lg := newYAxis(17000, 760000)
	require.True(t, lg.log, "the kfake ceiling is 40 times the pipeline")
	require.InDelta(t, 10000, lg.lo, 1e-6)
	require.InDelta(t, 1e6, lg.hi, 1e-3)
	require.Equal(t, []float64{1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6}, lg.ticks)
	require.InDelta(t, 0.5, lg.frac(1e5), 1e-9)
	require.Less(t, lg.frac(17000), lg.frac(760000))

	r := sampleResults()
	r.Throughput[0].Ceiling.RecordsPerSec = 500000
	var b bytes.Buffer
	require.NoError(t, WriteChart(&b, r), "a log-scale chart draws too")
}
