package synth

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Minutes is 10 requests a second of job "shop", scraped every 15 s, whose
// error ratio changes every minute in a cycle of 0.5 %, exactly 1 %, 2 % and
// 0 %, with 10 minutes not scraped from GapAt on (the service kept
// serving): the truth of every one-minute time slice is known exactly, for
// the tests of time-slice SLOs.
type Minutes struct {
	Start, End, GapAt time.Time
}

// Ratio is the error ratio of minute i, (Start+i·1m, Start+(i+1)·1m].
func (m Minutes) Ratio(i int) float64 { return []float64{0.005, 0.01, 0.02, 0}[i%4] }

// minute is the index of the minute holding t.
func (m Minutes) minute(t time.Time) int { return int((t.Sub(m.Start) - 1) / time.Minute) }

// Scraped reports whether a sample exists at t.
func (m Minutes) Scraped(t time.Time) bool {
	return t.Before(m.GapAt) || !t.Before(m.GapAt.Add(10*time.Minute))
}

// WriteOpenMetrics writes the samples of http_requests_total{code="200"}
// and {code="500"} for promtool's backfill.
func (m Minutes) WriteOpenMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	type sample struct {
		at        time.Time
		ok, error float64
	}
	var samples []sample
	var ok, bad float64
	for at := m.Start; !at.After(m.End); at = at.Add(15 * time.Second) {
		if at.After(m.Start) {
			r := m.Ratio(m.minute(at))
			bad += 10 * 15 * r
			ok += 10 * 15 * (1 - r)
		}
		if m.Scraped(at) {
			samples = append(samples, sample{at, ok, bad})
		}
	}
	fmt.Fprintln(bw, "# TYPE http_requests counter")
	ts := func(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }
	for _, code := range []string{"200", "500"} {
		for _, s := range samples {
			v := s.ok
			if code == "500" {
				v = s.error
			}
			fmt.Fprintf(bw, "http_requests_total{job=\"shop\",code=%q} %s %s\n", code, strconv.FormatFloat(v, 'f', -1, 64), ts(s.at))
		}
	}
	fmt.Fprintln(bw, "# EOF")
	return bw.Flush()
}

// MinuteTruth is what the one-minute slices ending in a span were.
type MinuteTruth struct {
	// Counted slices had data; Bad of them missed a 99 % target (a slice
	// at exactly 1 % errors is good); GoodSum adds their good ratios.
	Counted, Bad int
	GoodSum      float64
	// NoData slices had fewer than the two samples rate() needs.
	NoData int
}

// Truth counts the one-minute slices ending in (from, to].
func (m Minutes) Truth(from, to time.Time) MinuteTruth {
	var t MinuteTruth
	for end := from.Truncate(time.Minute).Add(time.Minute); !end.After(to); end = end.Add(time.Minute) {
		if !end.After(from) {
			continue
		}
		samples := 0
		for back := time.Duration(0); back < time.Minute; back += 15 * time.Second {
			if m.Scraped(end.Add(-back)) {
				samples++
			}
		}
		if samples < 2 {
			t.NoData++
			continue
		}
		r := m.Ratio(m.minute(end))
		t.Counted++
		if r > 0.01 {
			t.Bad++
		}
		t.GoodSum += 1 - r
	}
	return t
}
