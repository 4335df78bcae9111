package bench

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart geometry (in pixels of the PNG) and colours.
const (
	chartW, chartH = 1000, 580
	chartDPI       = 96
	marginLeft     = 50 // the y title, left of the first panel's tick labels
	marginRight    = 30
	marginTop      = 90  // the title and subtitle
	marginBottom   = 100 // the x title and the legend
	panelGap       = 30
)

var (
	colInk  = color.RGBA{30, 30, 30, 255}
	colGrid = color.RGBA{225, 225, 225, 255}
	colAxis = color.RGBA{120, 120, 120, 255}
)

// series is one line of the chart.
type series struct {
	label  string
	col    color.RGBA
	dashed bool
	pick   func(Cell) *Measurement
}

var chartSeries = []series{
	{"pipeline (exactly once)", color.RGBA{31, 119, 180, 255}, false, func(c Cell) *Measurement { return c.Pipeline }},
	{"ceiling (bare txns)", color.RGBA{90, 90, 90, 255}, true, func(c Cell) *Measurement { return c.Ceiling }},
	{"at least once", color.RGBA{230, 120, 20, 255}, false, func(c Cell) *Measurement { return c.AtLeastOnce }},
}

// px converts pixels of the PNG to the plot's lengths.
func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / chartDPI }

// WriteChart draws throughput against transaction size for the pipeline,
// the ceiling and at-least-once, one panel per commit interval, and writes
// it as a PNG of chartW by chartH pixels.
// A run of the side-by-side part only (Config.Peer) gets the side-by-side
// chart instead (writePeerChart).
func WriteChart(w io.Writer, res *Results) error {
	if len(res.Throughput) == 0 && len(res.Peer) > 0 {
		return writePeerChart(w, res)
	}
	sizes, intervals, ax, err := chartGrid(res)
	if err != nil {
		return err
	}
	panels := make([]*plot.Plot, len(intervals))
	for i, iv := range intervals {
		if panels[i], err = chartPanel(res.Throughput, sizes, iv, ax); err != nil {
			return err
		}
	}

	return drawChart(w, panels, func(dc, area draw.Canvas) {
		chartTexts(dc, area, res, ax)
		chartLegend(dc, px(marginLeft), px(24))
	})
}

// drawChart lays the panels out side by side on a chartW by chartH canvas,
// lets texts draw around them, and writes the PNG.
func drawChart(w io.Writer, panels []*plot.Plot, texts func(dc, area draw.Canvas)) error {
	c := vgimg.NewWith(vgimg.UseWH(px(chartW), px(chartH)), vgimg.UseDPI(chartDPI))
	dc := draw.New(c)
	area := draw.Crop(dc, px(marginLeft), -px(marginRight), px(marginBottom), -px(marginTop))
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: px(panelGap)}
	for i, pc := range plot.Align([][]*plot.Plot{panels}, tiles, area)[0] {
		panels[i].Draw(pc)
	}
	texts(dc, area)
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("chart: writing png: %w", err)
	}
	return nil
}

// chartGrid returns the transaction sizes and commit intervals of the
// throughput cells, sorted, and the y axis that fits all their figures.
func chartGrid(res *Results) ([]int, []time.Duration, yAxis, error) {
	var sizes []int
	var intervals []time.Duration
	top, bottom := 0.0, math.Inf(1)
	for _, c := range res.Throughput {
		sizes = append(sizes, c.TxnSize)
		intervals = append(intervals, c.CommitInterval)
		for _, s := range chartSeries {
			if m := s.pick(c); m != nil && m.RecordsPerSec > 0 {
				top = max(top, m.RecordsPerSec)
				bottom = min(bottom, m.RecordsPerSec)
			}
		}
	}
	if top == 0 {
		return nil, nil, yAxis{}, errors.New("chart: no throughput figures")
	}
	slices.Sort(sizes)
	slices.Sort(intervals)
	return slices.Compact(sizes), slices.Compact(intervals), newYAxis(bottom, top), nil
}

// chartPanel plots the cells of one commit interval: x is the index of the
// transaction size (evenly spaced, the sizes being powers of ten), y the
// records per second.
func chartPanel(cells []Cell, sizes []int, iv time.Duration, ax yAxis) (*plot.Plot, error) {
	p := newPanel(iv)
	for _, s := range chartSeries {
		var xys plotter.XYs
		for i, size := range sizes {
			for _, c := range cells {
				m := s.pick(c)
				if m == nil || c.TxnSize != size || c.CommitInterval != iv || (ax.log && m.RecordsPerSec <= 0) {
					continue
				}
				xys = append(xys, plotter.XY{X: float64(i), Y: m.RecordsPerSec})
			}
		}
		if err := addLine(p, s, xys); err != nil {
			return nil, err
		}
	}

	finishPanel(p, sizes, ax)
	return p, nil
}

// addLine plots a series' points on p, if it has any.
func addLine(p *plot.Plot, s series, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("chart: plotting %s: %w", s.label, err)
	}
	line.LineStyle, points.GlyphStyle = s.styles()
	p.Add(line, points)
	return nil
}

// newPanel starts the panel of one commit interval: its title and grid.
func newPanel(iv time.Duration) *plot.Plot {
	p := plot.New()
	p.Title.Text = "commit " + iv.String()
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.TextStyle.Color = colInk
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal = draw.LineStyle{Color: colGrid, Width: px(1)}
	p.Add(grid)
	return p
}

// finishPanel sets a panel's axes: x ticks at the indexes of xs, labelled
// with them, and the shared y axis.
func finishPanel(p *plot.Plot, xs []int, ax yAxis) {
	var ticks []plot.Tick
	for i, x := range xs {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: fmt.Sprint(x)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.2, float64(len(xs)-1)+0.2
	if len(xs) == 1 {
		p.X.Min, p.X.Max = -1, 1
	}
	ax.apply(&p.Y)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.LineStyle = draw.LineStyle{Color: colAxis, Width: px(2)}
		a.Tick.LineStyle = a.LineStyle
		a.Tick.Label.Font.Size = vg.Points(10)
		a.Tick.Label.Color = colInk
	}
}

// styles returns the line and the marker of a series.
func (s series) styles() (draw.LineStyle, draw.GlyphStyle) {
	line := draw.LineStyle{Color: s.col, Width: px(3)}
	if s.dashed {
		line.Dashes = []vg.Length{px(10), px(10)}
	}
	return line, draw.GlyphStyle{Color: s.col, Radius: px(5.5), Shape: draw.BoxGlyph{}}
}

// chartTexts writes the title, the subtitle and the axis titles around the
// panels' area.
func chartTexts(dc draw.Canvas, area draw.Canvas, res *Results, ax yAxis) {
	title := textStyle(16, colInk)
	title.YAlign = draw.YTop
	dc.FillText(title, vg.Point{X: px(marginLeft), Y: dc.Max.Y - px(16)}, "throughput vs transaction size")
	sub := textStyle(11, colAxis)
	sub.YAlign = draw.YTop
	dc.FillText(sub, vg.Point{X: px(marginLeft), Y: dc.Max.Y - px(46)}, chartSubtitle(res))

	yTitle := "records/s"
	if ax.log {
		yTitle += " (log scale)"
	}
	side := textStyle(11, colInk)
	side.XAlign, side.YAlign, side.Rotation = draw.XCenter, draw.YTop, math.Pi/2
	dc.FillText(side, vg.Point{X: px(10), Y: area.Center().Y}, yTitle)
	under := textStyle(11, colInk)
	under.XAlign, under.YAlign = draw.XCenter, draw.YTop
	dc.FillText(under, vg.Point{X: area.Center().X, Y: area.Min.Y - px(8)}, "records per transaction")
}

// chartLegend draws the series side by side, one legend entry each, from
// (x, y) rightwards.
func chartLegend(dc draw.Canvas, x, y vg.Length) {
	for _, s := range chartSeries {
		x = legendEntry(dc, s, x, y)
	}
}

// legendEntry draws one series' legend entry at (x, y) and returns the x
// of the next.
func legendEntry(dc draw.Canvas, s series, x, y vg.Length) vg.Length {
	line, glyph := s.styles()
	l := plot.NewLegend()
	l.Left = true
	l.ThumbnailWidth = px(40)
	l.TextStyle = textStyle(11, colInk)
	l.Add(s.label, &plotter.Line{LineStyle: line}, &plotter.Scatter{GlyphStyle: glyph})
	at := draw.Crop(dc, x, 0, y, 0)
	l.Draw(at)
	r := l.Rectangle(at)
	return x + r.Max.X - r.Min.X + px(30)
}

func textStyle(points float64, c color.Color) text.Style {
	return text.Style{Color: c, Font: font.From(plot.DefaultFont, vg.Points(points)), Handler: plot.DefaultTextHandler}
}

func chartSubtitle(res *Results) string {
	cl := res.Setup.Cluster
	if strings.HasPrefix(cl, "embedded kfake") {
		cl = "embedded kfake"
	} else {
		cl = "real cluster"
	}
	return fmt.Sprintf("%s, %d partitions, %d orders, %d cpus", cl, res.Setup.Partitions, res.Setup.Orders, res.Machine.CPUs)
}

// yAxis is the records per second axis shared by the panels: linear from
// 0, or logarithmic by decades when the figures span more than a factor of
// 20 (the ceiling on kfake runs far above the pipeline).
type yAxis struct {
	log    bool
	lo, hi float64 // the range shown
	ticks  []float64
}

func newYAxis(bottom, top float64) yAxis {
	if top/bottom <= 20 {
		tick := niceStep(top * 1.05 / 5)
		hi := math.Ceil(top*1.05/tick) * tick
		a := yAxis{lo: 0, hi: hi}
		for v := 0.0; v <= hi+tick/2; v += tick {
			a.ticks = append(a.ticks, v)
		}
		return a
	}
	a := yAxis{log: true, lo: math.Pow(10, math.Floor(math.Log10(bottom))), hi: math.Pow(10, math.Ceil(math.Log10(top)))}
	for d := a.lo; d < a.hi*1.01; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := d * m; v <= a.hi*1.01 {
				a.ticks = append(a.ticks, v)
			}
		}
	}
	return a
}

// apply sets a plot's axis to this range, scale and ticks.
func (a yAxis) apply(to *plot.Axis) {
	to.Min, to.Max = a.lo, a.hi
	if a.log {
		to.Scale = plot.LogScale{}
	}
	var ticks []plot.Tick
	for _, v := range a.ticks {
		ticks = append(ticks, plot.Tick{Value: v, Label: shortNumber(v)})
	}
	to.Tick.Marker = plot.ConstantTicks(ticks)
}

// niceStep rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

// shortNumber formats an axis value: 500, 2.5K, 40K, 1.2M.
func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "K"
	}
	return fmt.Sprintf("%.0f", v)
}
