package bench

import (
	"image"
	"image/color"
	"strings"
)

// A 5x7 bitmap font for the chart's labels: upper-case letters (lower case
// is drawn as upper case), digits and some punctuation. Each glyph is seven
// rows of five pixels, left to right, '1' for ink.
var glyphRows = map[rune]string{
	'A':  "01110 10001 10001 11111 10001 10001 10001",
	'B':  "11110 10001 10001 11110 10001 10001 11110",
	'C':  "01110 10001 10000 10000 10000 10001 01110",
	'D':  "11100 10010 10001 10001 10001 10010 11100",
	'E':  "11111 10000 10000 11110 10000 10000 11111",
	'F':  "11111 10000 10000 11110 10000 10000 10000",
	'G':  "01110 10001 10000 10111 10001 10001 01111",
	'H':  "10001 10001 10001 11111 10001 10001 10001",
	'I':  "01110 00100 00100 00100 00100 00100 01110",
	'J':  "00111 00010 00010 00010 00010 10010 01100",
	'K':  "10001 10010 10100 11000 10100 10010 10001",
	'L':  "10000 10000 10000 10000 10000 10000 11111",
	'M':  "10001 11011 10101 10101 10001 10001 10001",
	'N':  "10001 10001 11001 10101 10011 10001 10001",
	'O':  "01110 10001 10001 10001 10001 10001 01110",
	'P':  "11110 10001 10001 11110 10000 10000 10000",
	'Q':  "01110 10001 10001 10001 10101 10010 01101",
	'R':  "11110 10001 10001 11110 10100 10010 10001",
	'S':  "01111 10000 10000 01110 00001 00001 11110",
	'T':  "11111 00100 00100 00100 00100 00100 00100",
	'U':  "10001 10001 10001 10001 10001 10001 01110",
	'V':  "10001 10001 10001 10001 10001 01010 00100",
	'W':  "10001 10001 10001 10101 10101 10101 01010",
	'X':  "10001 10001 01010 00100 01010 10001 10001",
	'Y':  "10001 10001 10001 01010 00100 00100 00100",
	'Z':  "11111 00001 00010 00100 01000 10000 11111",
	'0':  "01110 10001 10011 10101 11001 10001 01110",
	'1':  "00100 01100 00100 00100 00100 00100 01110",
	'2':  "01110 10001 00001 00010 00100 01000 11111",
	'3':  "11111 00010 00100 00010 00001 10001 01110",
	'4':  "00010 00110 01010 10010 11111 00010 00010",
	'5':  "11111 10000 11110 00001 00001 10001 01110",
	'6':  "00110 01000 10000 11110 10001 10001 01110",
	'7':  "11111 00001 00010 00100 01000 01000 01000",
	'8':  "01110 10001 10001 01110 10001 10001 01110",
	'9':  "01110 10001 10001 01111 00001 00010 01100",
	' ':  "00000 00000 00000 00000 00000 00000 00000",
	'.':  "00000 00000 00000 00000 00000 01100 01100",
	',':  "00000 00000 00000 00000 01100 00100 01000",
	'/':  "00000 00001 00010 00100 01000 10000 00000",
	'-':  "00000 00000 00000 11111 00000 00000 00000",
	'(':  "00010 00100 01000 01000 01000 00100 00010",
	')':  "01000 00100 00010 00010 00010 00100 01000",
	':':  "00000 01100 01100 00000 01100 01100 00000",
	'%':  "11000 11001 00010 00100 01000 10011 00011",
	'=':  "00000 00000 11111 00000 11111 00000 00000",
	'+':  "00000 00100 00100 11111 00100 00100 00000",
	'_':  "00000 00000 00000 00000 00000 00000 11111",
	'<':  "00010 00100 01000 10000 01000 00100 00010",
	'>':  "01000 00100 00010 00001 00010 00100 01000",
	'?':  "01110 10001 00001 00010 00100 00000 00100",
	'*':  "00000 00100 10101 01110 10101 00100 00000",
	'\'': "01100 00100 01000 00000 00000 00000 00000",
}

const (
	glyphW = 5
	glyphH = 7
)

// glyphs holds glyphRows parsed: per rune, per row, bit 4 the leftmost.
var glyphs = parseGlyphs(glyphRows)

func parseGlyphs(rows map[rune]string) map[rune][glyphH]uint8 {
	out := make(map[rune][glyphH]uint8, len(rows))
	for r, s := range rows {
		var g [glyphH]uint8
		for i, row := range strings.Fields(s) {
			for _, c := range row {
				g[i] = g[i]<<1 | uint8(c-'0')
			}
		}
		out[r] = g
	}
	return out
}

// textWidth returns the width in pixels of s drawn at scale.
func textWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (n*(glyphW+1) - 1) * scale
}

// textHeight is the height in pixels of a line drawn at scale.
func textHeight(scale int) int { return glyphH * scale }

// drawText draws s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, scale int, c color.Color) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['?']
		}
		for row := range glyphH {
			for col := range glyphW {
				if g[row]&(1<<(glyphW-1-col)) != 0 {
					fillRect(img, x+col*scale, y+row*scale, scale, scale, c)
				}
			}
		}
		x += (glyphW + 1) * scale
	}
}

// drawTextUp draws s rotated a quarter turn counter-clockwise (reading
// upwards), its bottom-left corner at (x, y).
func drawTextUp(img *image.RGBA, x, y int, s string, scale int, c color.Color) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['?']
		}
		for row := range glyphH {
			for col := range glyphW {
				if g[row]&(1<<(glyphW-1-col)) != 0 {
					fillRect(img, x+row*scale, y-(col+1)*scale, scale, scale, c)
				}
			}
		}
		y -= (glyphW + 1) * scale
	}
}

func fillRect(img *image.RGBA, x, y, w, h int, c color.Color) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Bounds())
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			img.Set(px, py, c)
		}
	}
}
