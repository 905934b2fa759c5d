package evaluator

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// prefillWatcher answers like poisonQuerier (never faulty) and watches the
// order of the backfill: how many range queries of SLOs after the first
// batch were asked before the first SLO's answers were stored.
type prefillWatcher struct {
	poisonQuerier
	e     *Evaluator
	first map[int]bool // the SLOs of the first batch, by number
	mu    sync.Mutex
	// later: range queries of one SLO past the first batch; early: those
	// asked while the first SLO held no slice yet.
	later, early int
}

var (
	oneJob  = regexp.MustCompile(`job="svc-(\d+)"`)
	manyJob = regexp.MustCompile(`job=~"([^"]*)"`)
)

// Query answers a grouped query (job=~"a|b") with a series per job.
func (q *prefillWatcher) Query(ctx context.Context, query string, at time.Time) (model.Value, error) {
	v, err := q.poisonQuerier.Query(ctx, query, at)
	return perJob(query, v), err
}

func (q *prefillWatcher) QueryRange(ctx context.Context, query string, r Range) (model.Value, error) {
	if m := oneJob.FindStringSubmatch(query); m != nil {
		if i, _ := strconv.Atoi(m[1]); !q.first[i] {
			t := q.e.snap.Load().slos[q.e.snap.Load().sloNames[0]].tracker
			t.mu.Lock()
			held := t.coarse.head != 0
			t.mu.Unlock()
			q.mu.Lock()
			q.later++
			if !held {
				q.early++
			}
			q.mu.Unlock()
		}
	}
	v, err := q.poisonQuerier.QueryRange(ctx, query, r)
	return perJob(query, v), err
}

// perJob gives the one series of v to every job of a grouped query.
func perJob(query string, v model.Value) model.Value {
	m := manyJob.FindStringSubmatch(query)
	if m == nil {
		return v
	}
	jobs := strings.Split(m[1], "|")
	switch v := v.(type) {
	case model.Vector:
		var out model.Vector
		for _, j := range jobs {
			out = append(out, &model.Sample{Metric: model.Metric{"job": model.LabelValue(j)}, Value: v[0].Value, Timestamp: v[0].Timestamp})
		}
		return out
	case model.Matrix:
		var out model.Matrix
		for _, j := range jobs {
			out = append(out, &model.SampleStream{Metric: model.Metric{"job": model.LabelValue(j)}, Values: v[0].Values})
		}
		return out
	}
	return v
}

// TestBackfillInBatches: more SLOs than prefillBatch to backfill are
// backfilled a batch at a time, each batch's answers stored before the
// next batch is asked (a cycle's answers are held until it ends, so a
// backfill of 10,000 SLOs at once held gigabytes of them), and every SLO
// ends the cycle backfilled and fresh, with the windows a small backfill
// gives.
func TestBackfillInBatches(t *testing.T) {
	at := time.Date(2026, 5, 31, 23, 40, 0, 0, time.UTC)
	set := &slo.Set{}
	for i := range prefillBatch + 150 {
		set.SLOs = append(set.SLOs, jobSLO(fmt.Sprintf("svc-%d", i)))
	}
	q := &prefillWatcher{}
	e, err := New(Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	q.e = e
	if err := e.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	// Batches follow the SLOs' order, by name.
	q.first = map[int]bool{}
	for _, name := range e.snap.Load().sloNames[:prefillBatch] {
		i, _ := strconv.Atoi(strings.TrimPrefix(name, "svc-"))
		q.first[i] = true
	}
	e.Evaluate(context.Background(), at)
	if q.later == 0 || q.early != 0 {
		t.Errorf("%d range queries of SLOs after the first batch, %d of them before the first batch was stored; want some, none", q.later, q.early)
	}
	// One SLO alone, backfilled in the cycle itself, for comparison.
	alone := backfilledWith(t, &slo.Set{SLOs: []*slo.SLO{jobSLO("svc-0")}}, at, &poisonQuerier{})
	want, _ := alone.SLO("svc-0")
	for _, o := range set.SLOs {
		st, _ := e.SLO(o.Name)
		if !st.Fresh || !e.snap.Load().slos[o.Name].backfilled || len(st.Windows) != len(want.Windows) {
			t.Fatalf("%s: fresh %v, backfilled %v, %d windows after the backfill; want fresh, backfilled, %d", o.Name, st.Fresh, e.snap.Load().slos[o.Name].backfilled, len(st.Windows), len(want.Windows))
		}
		for i, w := range st.Windows {
			if w.Bad != want.Windows[i].Bad || w.Total != want.Windows[i].Total || w.Complete != want.Windows[i].Complete {
				t.Fatalf("%s window %s: %v/%v complete %v; alone %v/%v complete %v", o.Name, w.Window, w.Bad, w.Total, w.Complete, want.Windows[i].Bad, want.Windows[i].Total, want.Windows[i].Complete)
			}
		}
	}
}

// backfilledWith is an evaluator of set after one cycle at at against q.
func backfilledWith(t *testing.T, set *slo.Set, at time.Time, q Querier) *Evaluator {
	t.Helper()
	e, err := New(Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	e.Evaluate(context.Background(), at)
	return e
}
