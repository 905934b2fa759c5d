package evaluator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// shardSet is n SLOs of n services, plus a hypothesis, which every replica
// evaluates whatever its shard.
func shardSet(n int) *slo.Set {
	set := &slo.Set{}
	for i := range n {
		job := fmt.Sprintf("svc-%03d", i)
		set.SLOs = append(set.SLOs, &slo.SLO{
			Name: job + "-availability", Service: job, Objective: 99.9, Window: 30 * 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: fmt.Sprintf(`sum(rate(http_requests_total{job=%q,code=~"5.."}[{{.window}}]))`, job),
				Total:  fmt.Sprintf(`sum(rate(http_requests_total{job=%q}[{{.window}}]))`, job),
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
			Gate:     slo.GatePolicy{BurnRateWindow: time.Hour},
		})
	}
	set.Hypotheses = []*slo.Hypothesis{{
		Name:      "everyone-steady",
		Probes:    []*slo.Probe{{Name: "up", Query: "min(up)", Tolerance: &slo.Tolerance{Op: slo.OpEQ, Value: 1}}},
		FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
	}}
	return set
}

// TestShardsPartitionSLOs runs the three replicas of --shard.count=3 over
// the same 100 SLOs: every SLO is evaluated by exactly one of them, their
// union is the whole set, no shard is idle or takes far more than its
// share, and each replica still evaluates the hypothesis.
func TestShardsPartitionSLOs(t *testing.T) {
	const n, shards = 100, 3
	set := shardSet(n)
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

	owner := map[string]int{} // SLO name → the shard that evaluated it
	for index := range shards {
		ev, err := evaluator.New(evaluator.Options{
			Querier: &constQuerier{}, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(),
			ShardIndex: index, ShardCount: shards, Now: func() time.Time { return at },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			t.Fatal(err)
		}
		ev.Evaluate(context.Background(), at)

		statuses := ev.SLOs()
		for _, st := range statuses {
			if prev, dup := owner[st.Name]; dup {
				t.Errorf("SLO %s is evaluated by shards %d and %d", st.Name, prev, index)
			}
			owner[st.Name] = index
			if !ev.InShard(st.Name) {
				t.Errorf("shard %d evaluates %s, which InShard says is not its own", index, st.Name)
			}
			if !st.Fresh {
				t.Errorf("shard %d: %s was not evaluated: %+v", index, st.Name, st)
			}
		}
		// A fair share is n/shards; a hash that put most SLOs on one
		// replica would defeat the purpose of sharding.
		if got := len(statuses); got == 0 || got > 2*n/shards {
			t.Errorf("shard %d evaluates %d of %d SLOs, want between 1 and %d", index, got, n, 2*n/shards)
		}
		t.Logf("shard %d/%d: %d SLOs", index, shards, len(statuses))

		if _, ok := ev.Hypothesis("everyone-steady"); !ok {
			t.Errorf("shard %d does not evaluate the hypothesis; hypotheses belong to every replica", index)
		}
	}

	if len(owner) != n {
		t.Errorf("the shards together evaluate %d SLOs, want all %d", len(owner), n)
	}
	for _, o := range set.SLOs {
		if _, ok := owner[o.Name]; !ok {
			t.Errorf("SLO %s is evaluated by no shard", o.Name)
		}
	}
}

// TestShardOptionsValidated: an index outside [0, count) is refused, and
// a count of 1 (the default) evaluates everything.
func TestShardOptionsValidated(t *testing.T) {
	for _, tc := range []struct{ index, count int }{{-1, 3}, {3, 3}, {1, 1}} {
		_, err := evaluator.New(evaluator.Options{Querier: &constQuerier{}, ShardIndex: tc.index, ShardCount: tc.count})
		if err == nil {
			t.Errorf("shard %d of %d accepted", tc.index, tc.count)
		}
	}
	ev, err := evaluator.New(evaluator.Options{Querier: &constQuerier{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	set := shardSet(10)
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	if got := len(ev.SLOs()); got != len(set.SLOs) {
		t.Errorf("unsharded evaluator has %d SLOs, want %d", got, len(set.SLOs))
	}
}
