package testenv

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/slogate/slogate/internal/synth"
)

// MemStorage is a storage.Queryable of float samples held in slices, for
// tests that run many months of synthetic history through the PromQL
// engine: a TSDB head (NewTSDB) takes seconds per month of samples under
// -race, this a tenth of that, and the engine answers the same.
type MemStorage struct {
	mu     sync.RWMutex
	series map[string]*memSeries // by labels
}

type memSeries struct {
	ls      labels.Labels
	samples []chunks.Sample
}

// NewMemStorage returns a MemStorage holding the samples of the traffics,
// as OpenTSDB does.
func NewMemStorage(trs ...synth.Traffic) *MemStorage {
	m := &MemStorage{series: map[string]*memSeries{}}
	for _, tr := range trs {
		ls := trafficSeries(tr)
		ss := make([]*memSeries, len(ls))
		for i, l := range ls {
			ss[i] = m.get(l)
		}
		tr.Samples(func(s synth.Sample) {
			if s.Skip {
				return
			}
			t := s.T.UnixMilli()
			for i, v := range trafficValues(s) {
				ss[i].samples = append(ss[i].samples, floatSample{t, v})
			}
		})
	}
	return m
}

func (m *MemStorage) get(ls labels.Labels) *memSeries {
	s, ok := m.series[ls.String()]
	if !ok {
		s = &memSeries{ls: ls}
		m.series[ls.String()] = s
	}
	return s
}

// Add appends a sample; those of a series must come in time order.
func (m *MemStorage) Add(ls labels.Labels, t int64, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.get(ls)
	s.samples = append(s.samples, floatSample{t, v})
}

// Querier implements storage.Queryable. It sees the samples added so far.
func (m *MemStorage) Querier(int64, int64) (storage.Querier, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	q := &memQuerier{}
	for _, s := range m.series {
		q.series = append(q.series, storage.NewListSeries(s.ls, slices.Clip(s.samples)))
	}
	slices.SortFunc(q.series, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return q, nil
}

type memQuerier struct{ series []storage.Series }

func (q *memQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range q.series {
		if matchAll(s.Labels(), ms) {
			out = append(out, s)
		}
	}
	return &listSeriesSet{series: out, i: -1}
}

func matchAll(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (q *memQuerier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range q.series {
		if v := s.Labels().Get(name); v != "" && matchAll(s.Labels(), ms) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (q *memQuerier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range q.series {
		if matchAll(s.Labels(), ms) {
			s.Labels().Range(func(l labels.Label) { out = append(out, l.Name) })
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil, nil
}

func (q *memQuerier) Close() error { return nil }

type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }

// floatSample is a chunks.Sample of a float.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }
