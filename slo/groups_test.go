package slo

import (
	"os"
	"testing"
	"time"
)

func loadGroupsFixture(t *testing.T) *SLO {
	t.Helper()
	set, diags := LoadFS(os.DirFS("../testdata/definitions/groups"), "checkout.yaml")
	if diags.HasErrors() {
		t.Fatal(diags.String())
	}
	o := set.SLO("checkout-availability")
	if o == nil || !o.Grouped() {
		t.Fatalf("checkout-availability not loaded as grouped: %+v", o)
	}
	return o
}

func TestForGroupInjectsMatchers(t *testing.T) {
	o := loadGroupsFixture(t)
	if o.MaxGroupsOrDefault() != 50 || o.GroupPolicyOrDefault() != GroupsEach {
		t.Errorf("maxGroups %d policy %s, want 50 each", o.MaxGroupsOrDefault(), o.GroupPolicyOrDefault())
	}
	g, err := o.ForGroup(map[string]string{"cluster": "eu", "route": `/pay"x`})
	if err != nil {
		t.Fatal(err)
	}
	if want := `checkout-availability{cluster="eu",route="/pay\"x"}`; g.Name != want {
		t.Errorf("name %s, want %s", g.Name, want)
	}
	if g.Parent != o.Name || g.Grouped() || g.Labels["cluster"] != "eu" || g.Labels["team"] != "payments" {
		t.Errorf("group SLO: parent %q grouped %v labels %v", g.Parent, g.Grouped(), g.Labels)
	}
	if o.Labels["cluster"] != "" {
		t.Errorf("the grouped SLO's labels were changed: %v", o.Labels)
	}
	wantErr := `sum(rate(http_requests_total{cluster="eu",code=~"5..",job="checkout",route="/pay\"x"}[{{.window}}]))`
	ev, err := g.Events()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Bad != wantErr {
		t.Errorf("errors query\n got %s\nwant %s", ev.Bad, wantErr)
	}
	if _, err := o.ForGroup(map[string]string{"cluster": "eu"}); err == nil {
		t.Error("a group without a route value was accepted")
	}
}

func TestForGroupLatencyAndThreshold(t *testing.T) {
	lat := &SLO{Name: "lat", GroupBy: []string{"zone"}, Indicator: Indicator{Latency: &LatencyIndicator{Histogram: `http_request_duration_seconds{job="x"}`, Threshold: 0.3}}}
	g, err := lat.ForGroup(map[string]string{"zone": "a"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := g.Events()
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(rate(http_request_duration_seconds_count{job="x",zone="a"}[{{.window}}]))`
	if ev.Total != want {
		t.Errorf("total\n got %s\nwant %s", ev.Total, want)
	}
	q, err := lat.DiscoveryQuery(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := `group by (zone) (last_over_time(http_request_duration_seconds_count{job="x"}[5m]))`; q != want {
		t.Errorf("discovery\n got %s\nwant %s", q, want)
	}
}

func TestDiscoveryQueryEverySelector(t *testing.T) {
	o := &SLO{Name: "r", GroupBy: []string{"cluster"}, Indicator: Indicator{Ratio: &RatioIndicator{
		Errors: `sum(rate(a[{{.window}}]))`,
		Total:  `sum(rate(a_total{x="1"}[{{.window}}])) + sum(rate(b_total[{{.window}}]))`,
	}}}
	q, err := o.DiscoveryQuery(30 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := `group by (cluster) (last_over_time(a_total{x="1"}[30d])) or group by (cluster) (last_over_time(b_total[30d]))`
	if q != want {
		t.Errorf("discovery\n got %s\nwant %s", q, want)
	}
	if _, err := promql.ParseExpr(q); err != nil {
		t.Errorf("discovery query does not parse: %v", err)
	}
}
