package bench

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPeerFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(t, false, "--brokers", "a:1", "--peer", "kstreams", "--peer-instances", "1,3", "--peer-txn-size", "500", "--peer-jar", "x.jar")
	require.NoError(t, err)
	require.Equal(t, PeerKStreams, c.Peer)
	require.Equal(t, []int{1, 3}, c.PeerInstances)
	require.Equal(t, 500, c.PeerTxnSize)
	require.Equal(t, "x.jar", c.PeerJar)

	c, err = parseFlags(t, false)
	require.NoError(t, err)
	require.Empty(t, c.Peer, "no peer unless asked")
	require.Equal(t, DefaultPeerJar, c.PeerJar)
	require.Equal(t, []int{1, 2}, c.PeerInstances)
}

func TestBadPeerFlagsNameTheFlag(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown peer":   {[]string{"--brokers", "a:1", "--peer", "flink"}, `--peer: want kstreams or nothing, got "flink"`},
		"on kfake":       {[]string{"--peer", "kstreams"}, "--peer: the kstreams peer needs --brokers"},
		"zero instances": {[]string{"--brokers", "a:1", "--peer", "kstreams", "--peer-instances", "0"}, "positive integers"},
		"zero txn size":  {[]string{"--brokers", "a:1", "--peer", "kstreams", "--peer-txn-size", "0"}, "--peer-txn-size"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(t, false, tc.args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCheckPeerNeedsTheJar(t *testing.T) {
	t.Parallel()
	c := Config{Peer: PeerKStreams, PeerJar: t.TempDir() + "/missing.jar"}
	require.ErrorIs(t, c.checkPeer(), errNoPeer)
}

// samplePeer is a side-by-side run at two commit intervals, one and two
// instances, both modes.
func samplePeer() []PeerCell {
	var cells []PeerCell
	for _, iv := range []time.Duration{100 * time.Millisecond, time.Second} {
		for _, n := range []int{1, 2} {
			for i, mode := range []string{PeerModeDefaults, PeerModeEqual} {
				base := float64(n*1000 + i*500)
				cells = append(cells, PeerCell{
					Peer: PeerKStreams, Mode: mode, CommitInterval: iv, Instances: n, TxnSize: 1000,
					Exactly:  Measurement{RecordsPerSec: 2 * base, Records: 1000, Elapsed: 2 * time.Second, FirstCommit: time.Second},
					KStreams: Measurement{RecordsPerSec: base},
				})
			}
		}
	}
	return cells
}

func TestWritePeerTable(t *testing.T) {
	t.Parallel()
	res := &Results{Peer: samplePeer()}
	var b bytes.Buffer
	require.NoError(t, res.WriteTable(&b))
	out := b.String()
	require.Contains(t, out, "side by side with Kafka Streams")
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " defaults ") || strings.Contains(l, " equal ") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	require.Len(t, rows, 8)
	require.Equal(t, "100ms 1 defaults 1000 2,000 1,000 2.00 1,000 0", rows[0])
	require.Equal(t, "1s 2 equal 1000 5,000 2,500 2.00 1,000 0", rows[7])
	require.Contains(t, out, "defaults: exactly's transaction ends at the commit interval or 10000 records")

	// With --peer-loops the table says both sides are threads of one
	// process.
	cells := samplePeer()
	for i := range cells {
		cells[i].Loops = true
	}
	b.Reset()
	require.NoError(t, (&Results{Peer: cells}).WriteTable(&b))
	require.Contains(t, b.String(), "exactly one instance of n loops, Kafka Streams one JVM of n threads")
}

func TestPeerRatioWithoutPeerFigure(t *testing.T) {
	t.Parallel()
	require.Zero(t, PeerCell{Exactly: Measurement{RecordsPerSec: 10}}.Ratio())
}

func TestWritePeerChart(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, WriteChart(&b, &Results{Peer: samplePeer()}))
	img, err := png.Decode(&b)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, chartW, chartH), img.Bounds())
	legend := image.Rect(0, chartH-marginBottom/2, chartW, chartH)
	for _, s := range peerChartSeries {
		require.True(t, hasMarker(img, s.series, legend), "legend: %s", s.label)
		require.True(t, hasMarker(img, s.series, leftPanel), "100ms panel: %s", s.label)
		require.True(t, hasMarker(img, s.series, rightPanel), "1s panel: %s", s.label)
	}
	require.Error(t, WriteChart(&bytes.Buffer{}, &Results{Peer: []PeerCell{{Mode: PeerModeDefaults}}}), "cells without figures")
}
