package bench

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Chart geometry and colours.
const (
	chartW, chartH = 1000, 580
	marginLeft     = 110
	marginRight    = 30
	marginTop      = 110
	marginBottom   = 130
	panelGap       = 50
	textScale      = 2
)

var (
	colWhite = color.RGBA{255, 255, 255, 255}
	colInk   = color.RGBA{30, 30, 30, 255}
	colGrid  = color.RGBA{225, 225, 225, 255}
	colAxis  = color.RGBA{120, 120, 120, 255}
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

// WriteChart draws throughput against transaction size for the pipeline,
// the ceiling and at-least-once, one panel per commit interval, and writes
// it as a PNG.
func WriteChart(w io.Writer, res *Results) error {
	img, err := drawChart(res)
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

func drawChart(res *Results) (*image.RGBA, error) {
	if len(res.Throughput) == 0 {
		return nil, errors.New("chart: no throughput figures")
	}
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
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	slices.Sort(intervals)
	intervals = slices.Compact(intervals)
	if top == 0 {
		return nil, errors.New("chart: no throughput figures")
	}
	ax := newYAxis(bottom, top)

	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fillRect(img, 0, 0, chartW, chartH, colWhite)
	drawText(img, marginLeft, 20, "throughput vs transaction size", 3, colInk)
	drawText(img, marginLeft, 56, chartSubtitle(res), textScale, colAxis)

	n := len(intervals)
	panelW := (chartW - marginLeft - marginRight - panelGap*(n-1)) / n
	plotH := chartH - marginTop - marginBottom
	for i, iv := range intervals {
		p := panel{img: img, x0: marginLeft + i*(panelW+panelGap), y0: marginTop, w: panelW, h: plotH, ax: ax, sizes: sizes}
		p.axes(i == 0, "commit "+iv.String())
		for _, s := range chartSeries {
			p.line(res.Throughput, iv, s)
		}
	}
	yTitle := "records/s"
	if ax.log {
		yTitle += " (log scale)"
	}
	drawTextUp(img, 16, marginTop+plotH/2+textWidth(yTitle, textScale)/2, yTitle, textScale, colInk)
	xTitle := "records per transaction"
	drawText(img, marginLeft+(chartW-marginLeft-marginRight-textWidth(xTitle, textScale))/2, marginTop+plotH+42, xTitle, textScale, colInk)
	legend(img, marginLeft, chartH-40)
	return img, nil
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

// yAxis maps records per second to [0, 1] of a panel's height: linear
// from 0, or logarithmic by decades when the figures span more than a
// factor of 20 (the ceiling on kfake runs far above the pipeline).
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

// frac returns where v sits on the axis, 0 at the bottom, 1 at the top.
func (a yAxis) frac(v float64) float64 {
	if !a.log {
		return v / a.hi
	}
	return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
}

// panel is one plot area: x is the transaction size (evenly spaced, the
// sizes being powers of ten), y the records per second.
type panel struct {
	img          *image.RGBA
	x0, y0, w, h int
	ax           yAxis
	sizes        []int
}

func (p panel) x(size int) int {
	i := slices.Index(p.sizes, size)
	if len(p.sizes) == 1 {
		return p.x0 + p.w/2
	}
	pad := 30
	return p.x0 + pad + i*(p.w-2*pad)/(len(p.sizes)-1)
}

func (p panel) y(v float64) int {
	return p.y0 + p.h - int(math.Round(p.ax.frac(v)*float64(p.h)))
}

func (p panel) axes(labels bool, title string) {
	for _, v := range p.ax.ticks {
		y := p.y(v)
		fillRect(p.img, p.x0, y, p.w, 1, colGrid)
		if labels {
			s := shortNumber(v)
			drawText(p.img, p.x0-12-textWidth(s, textScale), y-textHeight(textScale)/2, s, textScale, colInk)
		}
	}
	fillRect(p.img, p.x0, p.y0, 2, p.h+1, colAxis)
	fillRect(p.img, p.x0, p.y0+p.h, p.w, 2, colAxis)
	for _, s := range p.sizes {
		x := p.x(s)
		fillRect(p.img, x, p.y0+p.h, 2, 8, colAxis)
		l := fmt.Sprint(s)
		drawText(p.img, x-textWidth(l, textScale)/2, p.y0+p.h+14, l, textScale, colInk)
	}
	drawText(p.img, p.x0+(p.w-textWidth(title, textScale))/2, p.y0-26, title, textScale, colInk)
}

// line draws one series over the cells of one commit interval.
func (p panel) line(cells []Cell, iv time.Duration, s series) {
	var pts []image.Point
	for _, size := range p.sizes {
		for _, c := range cells {
			if m := s.pick(c); m != nil && c.TxnSize == size && c.CommitInterval == iv {
				pts = append(pts, image.Pt(p.x(size), p.y(m.RecordsPerSec)))
			}
		}
	}
	for i := 1; i < len(pts); i++ {
		thickLine(p.img, pts[i-1], pts[i], s.col, s.dashed)
	}
	for _, pt := range pts {
		fillRect(p.img, pt.X-5, pt.Y-5, 11, 11, s.col)
	}
}

func legend(img *image.RGBA, x, y int) {
	for _, s := range chartSeries {
		thickLine(img, image.Pt(x, y+6), image.Pt(x+36, y+6), s.col, s.dashed)
		fillRect(img, x+13, y+1, 11, 11, s.col)
		drawText(img, x+46, y, s.label, textScale, colInk)
		x += 46 + textWidth(s.label, textScale) + 30
	}
}

// thickLine draws a 3-pixel line from a to b (Bresenham), dashed if asked.
func thickLine(img *image.RGBA, a, b image.Point, c color.Color, dashed bool) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := sign(b.X-a.X), sign(b.Y-a.Y)
	e := dx + dy
	for step := 0; ; step++ {
		if !dashed || (step/10)%2 == 0 {
			fillRect(img, a.X-1, a.Y-1, 3, 3, c)
		}
		if a == b {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			a.X += sx
		}
		if e2 <= dx {
			e += dx
			a.Y += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
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
