package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/evaluator"
)

// The charts are SVG written here rather than drawn by a script, so pages
// stay readable without JavaScript and need no asset pipeline. Every piece
// of text that reaches the markup goes through esc; numbers are formatted
// by us.

var esc = template.HTMLEscapeString

// threshold is a horizontal reference line of a chart.
type threshold struct {
	Value float64
	Label string
	Class string // CSS class: thr-page, thr-ticket, thr-zero, thr-gate
}

// lineChart is a time series with gaps where the value is unknown.
type lineChart struct {
	Title      string
	Points     []evaluator.Point
	Thresholds []threshold
	// Include are values the y axis must show (0, or 1 for a budget), so
	// that a flat series is not blown up to fill the chart.
	Include []float64
	// FixedMax pins the top of the axis (a budget never exceeds 100 %).
	FixedMax *float64
	// Format renders y values in labels.
	Format func(float64) string
}

const (
	chartW, chartH             = 640, 210
	padL, padR, padT, padB     = 56, 12, 26, 28
	plotW, plotH               = chartW - padL - padR, chartH - padT - padB
	stripLabelW, stripRowH     = 230, 20
	stripW, stripTop, stripBot = 960, 20, 26
)

// SVG renders the chart. Thresholds that do not fit the data's scale are
// named in a caption instead of squashing the series flat against zero.
func (c lineChart) SVG() template.HTML {
	if c.Format == nil {
		c.Format = fmtFloat
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		chartW, chartH, esc(c.Title), esc(c.Title))
	fmt.Fprintf(&b, `<rect class="plot" x="%d" y="%d" width="%d" height="%d"/>`, padL, padT, plotW, plotH)

	lo, hi, ok := c.yRange()
	if len(c.Points) < 2 || !ok {
		fmt.Fprintf(&b, `<text class="nodata" x="%d" y="%d" text-anchor="middle">no data</text>`, padL+plotW/2, padT+plotH/2)
		c.timeLabels(&b)
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	t0, t1 := c.Points[0].At, c.Points[len(c.Points)-1].At
	x := func(t time.Time) float64 {
		return padL + float64(plotW)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	y := func(v float64) float64 { return padT + float64(plotH)*(hi-v)/(hi-lo) }

	// Unknown spans are shaded, so a hole is visibly "no data", not zero.
	for i := 0; i < len(c.Points); i++ {
		if c.Points[i].Value.Valid() {
			continue
		}
		j := i
		for j+1 < len(c.Points) && !c.Points[j+1].Value.Valid() {
			j++
		}
		from, to := x(c.Points[max(i-1, 0)].At), x(c.Points[min(j+1, len(c.Points)-1)].At)
		fmt.Fprintf(&b, `<rect class="gap" x="%.1f" y="%d" width="%.1f" height="%d"><title>no data</title></rect>`, from, padT, math.Max(to-from, 1), plotH)
		i = j
	}

	// Axis labels: the scale's ends, and zero when it lies inside.
	ticks := []float64{lo, hi}
	if lo < 0 && hi > 0 {
		ticks = append(ticks, 0)
	}
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, padL+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text class="ylabel" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y(v)+4, esc(c.Format(v)))
	}

	c.thresholds(&b, lo, hi, y)

	// Each run of known values is its own polyline: a NaN breaks the line.
	var seg []string
	flush := func() {
		switch len(seg) {
		case 0:
		case 1:
			xy := strings.Split(seg[0], ",")
			fmt.Fprintf(&b, `<circle class="dot" cx="%s" cy="%s" r="2.5"/>`, xy[0], xy[1])
		default:
			fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(seg, " "))
		}
		seg = seg[:0]
	}
	for _, p := range c.Points {
		if !p.Value.Valid() {
			flush()
			continue
		}
		seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(p.At), y(float64(p.Value))))
	}
	flush()
	c.timeLabels(&b)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// thresholds draws the reference lines, labels those with room beside
// them, and names all of them in a legend above the plot, where a line
// above the scale is marked as such rather than squashing the series flat.
func (c lineChart) thresholds(b *strings.Builder, lo, hi float64, y func(float64) float64) {
	var labelled []float64
	for _, th := range c.Thresholds {
		if th.Value < lo || th.Value > hi {
			continue
		}
		yy := y(th.Value)
		fmt.Fprintf(b, `<line class="thr %s" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, esc(th.Class), padL, padL+plotW, yy, yy)
		crowded := false
		for _, other := range labelled {
			crowded = crowded || math.Abs(other-yy) < 12
		}
		if !crowded {
			labelled = append(labelled, yy)
			// On the left: the newest data, where spikes show, is on the right.
			fmt.Fprintf(b, `<text class="thrlabel %s" x="%d" y="%.1f">%s</text>`, esc(th.Class), padL+4, yy-3, esc(th.Label))
		}
	}
	// The legend is laid out right to left with an estimated text width:
	// SVG cannot measure text without a script.
	x := float64(padL + plotW)
	for i := len(c.Thresholds) - 1; i >= 0; i-- {
		th := c.Thresholds[i]
		label := th.Label
		if th.Value < lo || th.Value > hi {
			label += " (off scale)"
		}
		w := float64(len([]rune(label)))*5.8 + 6
		if x-w-30 < 0 {
			break // no room left; the lines themselves stay drawn
		}
		fmt.Fprintf(b, `<text class="legend %s" x="%.1f" y="%d" text-anchor="end">%s</text>`, esc(th.Class), x, padT-9, esc(label))
		x -= w
		fmt.Fprintf(b, `<line class="thr %s" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>`, esc(th.Class), x-16, x-2, padT-13, padT-13)
		x -= 30
	}
}

func (c lineChart) timeLabels(b *strings.Builder) {
	if len(c.Points) == 0 {
		return
	}
	t0, t1 := c.Points[0].At, c.Points[len(c.Points)-1].At
	layout := "15:04"
	if t1.Sub(t0) >= 12*time.Hour {
		layout = "Jan 2 15:04"
	}
	fmt.Fprintf(b, `<text class="xlabel" x="%d" y="%d">%s</text>`, padL, chartH-10, esc(t0.UTC().Format(layout)))
	fmt.Fprintf(b, `<text class="xlabel" x="%d" y="%d" text-anchor="end">%s UTC</text>`, padL+plotW, chartH-10, esc(t1.UTC().Format(layout)))
}

// yRange is the scale of the y axis: the data, the values to include and
// the lowest threshold (so at least one reference line is visible), rounded
// outwards to readable numbers.
func (c lineChart) yRange() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range c.Points {
		if v := float64(p.Value); p.Value.Valid() {
			lo, hi, ok = math.Min(lo, v), math.Max(hi, v), true
		}
	}
	if !ok {
		return 0, 0, false
	}
	for _, v := range c.Include {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if len(c.Thresholds) > 0 {
		lowest := math.Inf(1)
		for _, th := range c.Thresholds {
			lowest = math.Min(lowest, th.Value)
		}
		lo, hi = math.Min(lo, lowest), math.Max(hi, lowest)
	}
	if c.FixedMax != nil {
		hi = math.Max(*c.FixedMax, hi)
	} else {
		hi = niceCeil(hi + (hi-lo)*0.08)
	}
	if lo < 0 {
		lo = -niceCeil(-lo)
	}
	if hi-lo <= 0 {
		hi = lo + 1
	}
	return lo, hi, true
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// budgetBar draws the error budget remaining on a track whose zero sits at
// a fifth of its width: spending runs right to left, an overspent budget
// extends left of zero (clamped at -100 %, with an arrow when beyond).
func budgetBar(n evaluator.Num) template.HTML {
	const w, h, zero = 100.0, 12.0, 20.0
	var b strings.Builder
	title := "error budget remaining: " + fmtPct(n, 2)
	fmt.Fprintf(&b, `<svg class="bar" width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`, w, h, w, h, esc(title), esc(title))
	fmt.Fprintf(&b, `<rect class="track" x="0" y="0" width="%g" height="%g" rx="2"/>`, w, h)
	if n.Valid() {
		v := float64(n)
		cls := budgetClass(n)
		if v >= 0 {
			fmt.Fprintf(&b, `<rect class="fill %s" x="%g" y="0" width="%.1f" height="%g" rx="2"/>`, cls, zero, math.Min(v, 1)*(w-zero), h)
		} else {
			width := math.Min(-v, 1) * zero
			fmt.Fprintf(&b, `<rect class="fill %s" x="%.1f" y="0" width="%.1f" height="%g" rx="2"/>`, cls, zero-width, width, h)
			if v < -1 {
				fmt.Fprintf(&b, `<path class="over" d="M0 %g L5 1 L5 %g Z"/>`, h/2, h-1)
			}
		}
	}
	fmt.Fprintf(&b, `<line class="zero" x1="%g" x2="%g" y1="0" y2="%g"/></svg>`, zero, zero, h)
	return template.HTML(b.String())
}

// budgetClass colours a budget: red when overspent, orange below 25 %.
func budgetClass(n evaluator.Num) string {
	switch v := float64(n); {
	case !n.Valid():
		return "grey"
	case v < 0:
		return "red"
	case v < 0.25:
		return "orange"
	}
	return "green"
}

// stripRow is one probe (or SLO) of a run's verdict strip.
type stripRow struct {
	Label   string
	Entries []stripCell
}

type stripCell struct {
	At      time.Time
	Verdict string
	Title   string
}

// stripMark is a state change drawn across all rows.
type stripMark struct {
	At    time.Time
	Label string
}

// verdictStrip draws each row's verdicts over [from, to]: a cell lasts
// until the row's next verdict, the last one until to.
func verdictStrip(rows []stripRow, marks []stripMark, from, to time.Time) template.HTML {
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	plotX, plotWidth := float64(stripLabelW), float64(stripW-stripLabelW-8)
	x := func(t time.Time) float64 {
		f := float64(t.Sub(from)) / float64(to.Sub(from))
		return plotX + plotWidth*math.Max(0, math.Min(1, f))
	}
	height := stripTop + stripRowH*max(len(rows), 1) + stripBot
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart strip" viewBox="0 0 %d %d" role="img" aria-label="verdicts over time" xmlns="http://www.w3.org/2000/svg"><title>verdicts over time</title>`, stripW, height)
	for i, r := range rows {
		top := float64(stripTop + i*stripRowH)
		label := r.Label
		if len([]rune(label)) > 34 {
			label = string([]rune(label)[:33]) + "…"
		}
		fmt.Fprintf(&b, `<text class="rowlabel" x="%g" y="%.1f" text-anchor="end"><title>%s</title>%s</text>`, plotX-6, top+14, esc(r.Label), esc(label))
		fmt.Fprintf(&b, `<rect class="track" x="%g" y="%.1f" width="%g" height="%d"/>`, plotX, top+3, plotWidth, stripRowH-6)
		for j, e := range r.Entries {
			end := to
			if j+1 < len(r.Entries) {
				end = r.Entries[j+1].At
			}
			x0, x1 := x(e.At), x(end)
			fmt.Fprintf(&b, `<rect class="v-%s" x="%.1f" y="%.1f" width="%.1f" height="%d"><title>%s</title></rect>`,
				esc(verdictClass(e.Verdict)), x0, top+3, math.Max(x1-x0, 2), stripRowH-6, esc(e.Title))
		}
	}
	bottom := float64(stripTop + stripRowH*max(len(rows), 1))
	for _, m := range marks {
		xx := x(m.At)
		fmt.Fprintf(&b, `<line class="mark" x1="%.1f" x2="%.1f" y1="%d" y2="%.1f"/>`, xx, xx, stripTop-4, bottom)
		anchor := "middle"
		switch {
		case xx < plotX+40:
			anchor = "start"
		case xx > plotX+plotWidth-40:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="marklabel" x="%.1f" y="%d" text-anchor="%s">%s</text>`, xx, stripTop-6, anchor, esc(m.Label))
	}
	fmt.Fprintf(&b, `<text class="xlabel" x="%g" y="%.1f">%s</text>`, plotX, bottom+16, esc(from.UTC().Format("15:04:05")))
	fmt.Fprintf(&b, `<text class="xlabel" x="%g" y="%.1f" text-anchor="end">%s UTC (%s)</text>`, plotX+plotWidth, bottom+16,
		esc(to.UTC().Format("15:04:05")), esc(fmtDur(to.Sub(from))))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// verdictClass maps verdicts, gate statuses and run states to a colour.
func verdictClass(s string) string {
	switch s {
	case "pass", "open", "passed":
		return "green"
	case "fail", "closed", "failed", "aborted":
		return "red"
	case "unknown":
		return "amber"
	case "running", "recovering":
		return "blue"
	}
	return "grey"
}

func fmtFloat(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case a != 0 && (a < 0.001 || a >= 1e6):
		return strconv.FormatFloat(v, 'g', 3, 64)
	case a < 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 3, 64))
	case a < 100:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// fmtPct renders a ratio as a percentage, "–" when unknown.
func fmtPct(n evaluator.Num, decimals int) string {
	if !n.Valid() {
		return "–"
	}
	return strconv.FormatFloat(float64(n)*100, 'f', decimals, 64) + "%"
}

// fmtBurn renders a burn rate with two decimals: 1.00 is the line that
// matters, so it must not read as 1 when it is 1.004.
func fmtBurn(n evaluator.Num) string {
	if !n.Valid() {
		return "–"
	}
	if v := float64(n); v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(float64(n), 'f', 2, 64)
}

// fmtDur renders a duration without zero units ("1h5m", "2d3h"), to the
// second, or to the minute past a day.
func fmtDur(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	if d >= 24*time.Hour {
		d = d.Round(time.Minute)
	}
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.Itoa(int(n)) + u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
