package bench

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var chartOut = flag.String("chart-out", "", "also write the test charts to this PNG file (and NAME-log.png, NAME-one.png), to look at")

// decodeChart renders res and checks the PNG: its size, a white background,
// and a marker of every series in the legend below the panels.
func decodeChart(t *testing.T, res *Results, name string) image.Image {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteChart(&b, res))
	img, err := png.Decode(bytes.NewReader(b.Bytes()))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, chartW, chartH), img.Bounds())
	require.Equal(t, [3]uint32{255, 255, 255}, rgbAt(img, 2, 2), "white background")
	legend := image.Rect(0, chartH-marginBottom/2, chartW, chartH)
	for _, s := range chartSeries {
		require.True(t, hasMarker(img, s, legend), "legend: %s", s.label)
	}
	if *chartOut != "" {
		out := filepath.Clean(*chartOut)
		if name != "" {
			out = strings.TrimSuffix(out, filepath.Ext(out)) + "-" + name + ".png"
		}
		require.NoError(t, os.WriteFile(out, b.Bytes(), 0o644))
	}
	return img
}

func rgbAt(img image.Image, x, y int) [3]uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint32{r >> 8, g >> 8, b >> 8}
}

// hasMarker reports whether r holds a solid 5x5 square of the series'
// colour: part of one of its markers (anti-aliased text and the thinner
// lines never make one).
func hasMarker(img image.Image, s series, r image.Rectangle) bool {
	want := [3]uint32{uint32(s.col.R), uint32(s.col.G), uint32(s.col.B)}
	solid := func(x0, y0 int) bool {
		for y := y0; y < y0+5; y++ {
			for x := x0; x < x0+5; x++ {
				if rgbAt(img, x, y) != want {
					return false
				}
			}
		}
		return true
	}
	for y := r.Min.Y; y+5 <= r.Max.Y; y++ {
		for x := r.Min.X; x+5 <= r.Max.X; x++ {
			if solid(x, y) {
				return true
			}
		}
	}
	return false
}

// The panels sit between marginTop and chartH-marginBottom; with two
// commit intervals, the left half holds the 100ms one and the right half
// the 1s one.
var (
	leftPanel  = image.Rect(0, marginTop, chartW/2, chartH-marginBottom)
	rightPanel = image.Rect(chartW/2, marginTop, chartW, chartH-marginBottom)
)

func TestWriteChartIsAValidPNG(t *testing.T) {
	t.Parallel()
	img := decodeChart(t, sampleResults(), "")
	for _, s := range chartSeries {
		require.True(t, hasMarker(img, s, leftPanel), "100ms panel: %s", s.label)
	}
	// The 1s cell has the pipeline and at-least-once, but no ceiling.
	pipeline, ceiling, alo := chartSeries[0], chartSeries[1], chartSeries[2]
	require.True(t, hasMarker(img, pipeline, rightPanel))
	require.True(t, hasMarker(img, alo, rightPanel))
	require.False(t, hasMarker(img, ceiling, rightPanel))
}

func TestWriteChartNeedsThroughput(t *testing.T) {
	t.Parallel()
	require.Error(t, WriteChart(&bytes.Buffer{}, &Results{}))
	require.Error(t, WriteChart(&bytes.Buffer{}, &Results{Throughput: []Cell{{TxnSize: 100}}}), "cells without figures")
}

func TestWriteChartOnePanel(t *testing.T) {
	t.Parallel()
	r := sampleResults()
	r.Throughput = r.Throughput[:1] // one size, one interval: a point per series
	img := decodeChart(t, r, "one")
	for _, s := range chartSeries {
		require.True(t, hasMarker(img, s, image.Rect(0, marginTop, chartW, chartH-marginBottom)), s.label)
	}
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
	require.InDelta(t, 0, lin.lo, 1e-9)
	require.InDelta(t, 40000, lin.hi, 1e-9)
	require.Equal(t, []float64{0, 10000, 20000, 30000, 40000}, lin.ticks)

	lg := newYAxis(17000, 760000)
	require.True(t, lg.log, "the kfake ceiling is 40 times the pipeline")
	require.InDelta(t, 10000, lg.lo, 1e-6)
	require.InDelta(t, 1e6, lg.hi, 1e-3)
	require.Equal(t, []float64{1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6}, lg.ticks)
}

func TestWriteChartLogScale(t *testing.T) {
	t.Parallel()
	r := sampleResults()
	r.Throughput[0].Ceiling.RecordsPerSec = 500000
	// And a zero figure, which has no place on a log scale, is left out.
	r.Throughput = append(r.Throughput, Cell{TxnSize: 10, CommitInterval: time.Second, Pipeline: &Measurement{}})
	img := decodeChart(t, r, "log")
	require.True(t, hasMarker(img, chartSeries[1], leftPanel), "the ceiling, a decade above the rest")
	require.True(t, hasMarker(img, chartSeries[0], rightPanel), "the pipeline at 1s")
}
