package bench

import (
	"errors"
	"image/color"
	"io"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// peerSeries is one line of the side-by-side chart: one side in one mode.
type peerSeries struct {
	series
	mode string
	pick func(PeerCell) Measurement
}

var (
	colExactly  = color.RGBA{31, 119, 180, 255}
	colKStreams = color.RGBA{200, 50, 50, 255}
)

var peerChartSeries = []peerSeries{
	{series{label: "exactly, defaults", col: colExactly}, PeerModeDefaults, func(c PeerCell) Measurement { return c.Exactly }},
	{series{label: "Kafka Streams, defaults", col: colKStreams}, PeerModeDefaults, func(c PeerCell) Measurement { return c.KStreams }},
	{series{label: "exactly, equal txn", col: colExactly, dashed: true}, PeerModeEqual, func(c PeerCell) Measurement { return c.Exactly }},
	{series{label: "Kafka Streams, equal txn", col: colKStreams, dashed: true}, PeerModeEqual, func(c PeerCell) Measurement { return c.KStreams }},
}

// writePeerChart draws exactly and the Kafka Streams peer side by side:
// throughput against instances (threads), one panel per commit interval,
// solid at each one's defaults and dashed at equal transaction size.
func writePeerChart(w io.Writer, res *Results) error {
	var intervals []time.Duration
	var instances []int
	top, bottom := 0.0, math.Inf(1)
	for _, c := range res.Peer {
		intervals, instances = append(intervals, c.CommitInterval), append(instances, c.Instances)
		for _, s := range peerChartSeries {
			if m := s.pick(c); s.mode == c.Mode && m.RecordsPerSec > 0 {
				top, bottom = max(top, m.RecordsPerSec), min(bottom, m.RecordsPerSec)
			}
		}
	}
	if top == 0 {
		return errors.New("chart: no side-by-side figures")
	}
	slices.Sort(intervals)
	slices.Sort(instances)
	intervals, instances = slices.Compact(intervals), slices.Compact(instances)
	ax := newYAxis(bottom, top)
	panels := make([]*plot.Plot, len(intervals))
	for i, iv := range intervals {
		var err error
		if panels[i], err = peerPanel(res.Peer, instances, iv, ax); err != nil {
			return err
		}
	}
	return drawChart(w, panels, func(dc, area draw.Canvas) {
		title := textStyle(16, colInk)
		title.YAlign = draw.YTop
		dc.FillText(title, vg.Point{X: px(marginLeft), Y: dc.Max.Y - px(16)}, "exactly vs Kafka Streams (exactly_once_v2)")
		sub := textStyle(11, colAxis)
		sub.YAlign = draw.YTop
		dc.FillText(sub, vg.Point{X: px(marginLeft), Y: dc.Max.Y - px(46)}, chartSubtitle(res))
		side := textStyle(11, colInk)
		side.XAlign, side.YAlign, side.Rotation = draw.XCenter, draw.YTop, math.Pi/2
		dc.FillText(side, vg.Point{X: px(10), Y: area.Center().Y}, "records/s")
		under := textStyle(11, colInk)
		under.XAlign, under.YAlign = draw.XCenter, draw.YTop
		dc.FillText(under, vg.Point{X: area.Center().X, Y: area.Min.Y - px(8)}, peerAxisLabel(res.Peer))
		x := px(marginLeft)
		for _, s := range peerChartSeries {
			x = legendEntry(dc, s.series, x, px(24))
		}
	})
}

// peerAxisLabel names the x axis: what n counts on exactly's side.
func peerAxisLabel(cells []PeerCell) string {
	if len(cells) > 0 && cells[0].Loops {
		return "n: loops of one exactly instance / threads of one Kafka Streams JVM"
	}
	return "exactly instances / Kafka Streams threads"
}

// peerPanel plots the side-by-side cells of one commit interval.
func peerPanel(cells []PeerCell, instances []int, iv time.Duration, ax yAxis) (*plot.Plot, error) {
	p := newPanel(iv)
	for _, s := range peerChartSeries {
		var xys plotter.XYs
		for i, n := range instances {
			for _, c := range cells {
				if m := s.pick(c); c.Mode == s.mode && c.Instances == n && c.CommitInterval == iv && m.RecordsPerSec > 0 {
					xys = append(xys, plotter.XY{X: float64(i), Y: m.RecordsPerSec})
				}
			}
		}
		if err := addLine(p, s.series, xys); err != nil {
			return nil, err
		}
	}
	finishPanel(p, instances, ax)
	return p, nil
}
