package testenv

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// backfillBlockDuration is passed as --max-block-duration. promtool parses
// the whole input once per block, so 2h blocks (its default) over 30 days
// of history would parse it 360 times; promtool rounds this down to its
// largest compaction range that fits (486h), a few passes.
const backfillBlockDuration = 30 * 24 * time.Hour

// backfillTimeout bounds one promtool run.
const backfillTimeout = 10 * time.Minute

// Backfill writes the OpenMetrics text read from openMetrics (with
// timestamps, ending in "# EOF") as TSDB blocks into dataDir with
// `promtool tsdb create-blocks-from openmetrics`. Start Prometheus on
// dataDir afterwards (PromOptions.DataDir) to query the history. It fails
// the test with promtool's output on error.
func Backfill(t testing.TB, dataDir string, openMetrics io.Reader) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backfill.om.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("testenv: backfill: %v", err)
	}
	_, err = io.Copy(f, openMetrics)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("testenv: backfill: write input: %v", err)
	}
	BackfillFile(t, dataDir, path)
}

// BackfillFile is Backfill from a file, e.g. the one OMWriter.Close returns.
func BackfillFile(t testing.TB, dataDir, path string) {
	t.Helper()
	promtool := Binary(t, "promtool")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatalf("testenv: backfill: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), backfillTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from",
		"--max-block-duration="+strconv.FormatInt(int64(backfillBlockDuration/time.Hour), 10)+"h",
		"--quiet",
		"openmetrics", path, dataDir)
	cmd.SysProcAttr = childSysProcAttr()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("testenv: %s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(out.String(), logTailLines))
	}
	t.Logf("testenv: backfilled %s into %s in %s", filepath.Base(path), dataDir, time.Since(start).Round(time.Millisecond))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// OMType is the type of an OpenMetrics metric family.
type OMType string

// The metric family types OMWriter writes.
const (
	OMCounter   OMType = "counter"
	OMGauge     OMType = "gauge"
	OMHistogram OMType = "histogram"
)

// OMWriter writes OpenMetrics text with explicit timestamps, for Backfill,
// to a temporary file through a buffer, so that a month of per-minute
// samples costs no big string. OpenMetrics wants each metric family in one
// piece and each series' samples in increasing time order; the writer
// checks both and fails the test otherwise. Use it from the test goroutine:
//
//	om := testenv.NewOMWriter(t)
//	om.Family("http_requests_total", testenv.OMCounter)
//	for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
//		om.Sample(map[string]string{"code": "200"}, ts, n)
//	}
//	testenv.BackfillFile(t, dataDir, om.Close())
type OMWriter struct {
	t    testing.TB
	path string
	f    *os.File
	w    *bufio.Writer
	buf  []byte // scratch for one line

	family   string // name of the family being written (without _total)
	typ      OMType
	families map[string]bool
	lastTS   map[string]int64 // series (name + labels) → last timestamp, ms
	closed   bool
}

// NewOMWriter creates the writer and its file in a test temp directory.
func NewOMWriter(t testing.TB) *OMWriter {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.om.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("testenv: openmetrics: %v", err)
	}
	w := &OMWriter{
		t: t, path: path, f: f, w: bufio.NewWriterSize(f, 1<<20),
		families: map[string]bool{}, lastTS: map[string]int64{},
	}
	t.Cleanup(func() { _ = f.Close() })
	return w
}

// Family starts the metric family name of type typ; the samples that
// follow belong to it, until the next Family. For a counter, name may carry
// the _total suffix or not; samples are written with it.
func (w *OMWriter) Family(name string, typ OMType) {
	w.t.Helper()
	w.checkOpen()
	switch typ {
	case OMCounter:
		name = strings.TrimSuffix(name, "_total")
	case OMGauge, OMHistogram:
	default:
		w.t.Fatalf("testenv: openmetrics: family %s: unknown type %q", name, typ)
	}
	if !model.LegacyValidation.IsValidMetricName(name) {
		w.t.Fatalf("testenv: openmetrics: invalid metric name %q", name)
	}
	if w.families[name] {
		w.t.Fatalf("testenv: openmetrics: family %s started twice; a family must be written in one piece", name)
	}
	w.families[name] = true
	w.family, w.typ = name, typ
	w.buf = append(append(append(append(w.buf[:0], "# TYPE "...), name...), ' '), typ...)
	w.buf = append(w.buf, '\n')
	_, _ = w.w.Write(w.buf)
}

// Sample writes one sample of the current counter or gauge family: its
// series is identified by labels (nil for none), at ts, with value v.
func (w *OMWriter) Sample(lbls map[string]string, ts time.Time, v float64) {
	w.t.Helper()
	w.checkOpen()
	switch w.typ {
	case OMCounter:
		w.line(w.family+"_total", lbls, "", "", ts, v)
	case OMGauge:
		w.line(w.family, lbls, "", "", ts, v)
	default:
		w.t.Fatalf("testenv: openmetrics: Sample in %q family %s; use HistogramSample", w.typ, w.family)
	}
}

// HistogramPoint is one observation state of a classic histogram series:
// cumulative counts per bucket upper bound (the +Inf bucket is Count and
// need not be listed), the sum and the count of observations.
type HistogramPoint struct {
	Buckets map[float64]float64
	Sum     float64
	Count   float64
}

// HistogramSample writes one point of the current histogram family: its
// _bucket series (le in increasing order, +Inf last), _count and _sum.
func (w *OMWriter) HistogramSample(lbls map[string]string, ts time.Time, h HistogramPoint) {
	w.t.Helper()
	w.checkOpen()
	if w.typ != OMHistogram {
		w.t.Fatalf("testenv: openmetrics: HistogramSample in %q family %s", w.typ, w.family)
	}
	bounds := make([]float64, 0, len(h.Buckets))
	for le := range h.Buckets {
		if !math.IsInf(le, +1) {
			bounds = append(bounds, le)
		}
	}
	slices.Sort(bounds)
	for _, le := range bounds {
		w.line(w.family+"_bucket", lbls, "le", labels.FormatOpenMetricsFloat(le), ts, h.Buckets[le])
	}
	w.line(w.family+"_bucket", lbls, "le", "+Inf", ts, h.Count)
	w.line(w.family+"_count", lbls, "", "", ts, h.Count)
	w.line(w.family+"_sum", lbls, "", "", ts, h.Sum)
}

// line writes `name{labels,extraName="extraValue"} value timestamp`.
func (w *OMWriter) line(name string, lbls map[string]string, extraName, extraValue string, ts time.Time, v float64) {
	w.t.Helper()
	if w.family == "" {
		w.t.Fatalf("testenv: openmetrics: sample before any Family")
	}
	b := append(w.buf[:0], name...)
	names := make([]string, 0, len(lbls))
	for k := range lbls {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > 0 || extraName != "" {
		b = append(b, '{')
		for i, k := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, k, lbls[k])
		}
		if extraName != "" {
			if len(names) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extraName, extraValue)
		}
		b = append(b, '}')
	}
	series := string(b)
	ms := ts.UnixMilli()
	if last, ok := w.lastTS[series]; ok && ms <= last {
		w.t.Fatalf("testenv: openmetrics: %s: sample at %s is not after the previous one (%s)",
			series, ts.UTC().Format(time.RFC3339Nano), time.UnixMilli(last).UTC().Format(time.RFC3339Nano))
	}
	w.lastTS[series] = ms
	b = append(b, ' ')
	b = labels.AppendOpenMetricsFloat(b, v)
	b = append(b, ' ')
	// OpenMetrics timestamps are seconds; milliseconds are what the TSDB
	// keeps.
	b = appendMillisAsSeconds(b, ms)
	b = append(b, '\n')
	w.buf = b
	_, _ = w.w.Write(b)
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	// OpenMetrics escapes exactly these three in label values.
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendMillisAsSeconds(b []byte, ms int64) []byte {
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		b = append(b, '.')
		b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return b
}

func (w *OMWriter) checkOpen() {
	w.t.Helper()
	if w.closed {
		w.t.Fatalf("testenv: openmetrics: writer used after Close")
	}
}

// Close ends the text with "# EOF", flushes it and returns the file's
// path, for BackfillFile. Closing twice returns the path again.
func (w *OMWriter) Close() string {
	w.t.Helper()
	if w.closed {
		return w.path
	}
	w.closed = true
	_, _ = w.w.WriteString("# EOF\n")
	err := w.w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.t.Fatalf("testenv: openmetrics: write %s: %v", w.path, err)
	}
	return w.path
}

// Path is the file being written.
func (w *OMWriter) Path() string { return w.path }
