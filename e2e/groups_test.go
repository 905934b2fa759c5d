package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// groupedDefinitions: the shop's availability per job, whose gate every
// group must pass.
const groupedDefinitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  objective: 99
  window: 1d
  groupBy: [job]
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total[{{.window}}]))
  gate: {minBudgetRemaining: 50%}
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop}
spec:
  slos: [shop-availability]
`

// TestGroupsServe: slogate serve on a real Prometheus scraping two jobs,
// a busy healthy one and a small one with 5 % errors. The grouped SLO finds
// both and measures each; the aggregate keeps most of its budget, the small
// job burns its own, and the gate is closed by that group, named in the
// reason. The group's status is served at its escaped name, and its metric
// series carry its labels.
func TestGroupsServe(t *testing.T) {
	busy, small := testenv.NewTarget(t), testenv.NewTarget(t)
	busy.Traffic(500)
	small.Traffic(5).SetErrorShare(0.05)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{busy.ScrapeTarget("busy"), small.ScrapeTarget("small")}})
	srv := startServer(t, serverOptions{promURL: prom.URL(), definitions: groupedDefinitions})

	smallName := `shop-availability{job="small"}`
	srv.Eventually(60*time.Second, "the gate to close on the small job", func() error {
		g, code := srv.gate()
		for _, r := range g.Reasons {
			if code != http.StatusOK && r.Name == smallName && strings.Contains(r.Message, "error budget remaining") {
				return nil
			}
		}
		return fmt.Errorf("gate %d %+v", code, g)
	})

	var agg struct {
		Groups struct {
			Members []string `json:"members"`
			Tracked int      `json:"tracked"`
		} `json:"groups"`
		Budget float64 `json:"errorBudgetRemaining"`
	}
	// Until both targets have two scrapes, the aggregate may see the small
	// job alone.
	srv.Eventually(60*time.Second, "the aggregate to keep more than half its budget", func() error {
		if code := srv.do("GET", "/api/v1/slos/shop-availability", false, nil, &agg); code != http.StatusOK || agg.Groups.Tracked != 2 || agg.Budget < 0.5 {
			return fmt.Errorf("aggregate: %d %+v, want two groups and more than half the budget left", code, agg)
		}
		return nil
	})
	var group struct {
		Name, Parent string
		Group        map[string]string
		Budget       float64 `json:"errorBudgetRemaining"`
	}
	if code := srv.do("GET", "/api/v1/slos/"+url.PathEscape(smallName), false, nil, &group); code != http.StatusOK || group.Parent != "shop-availability" || group.Group["job"] != "small" || group.Budget >= 0.5 {
		t.Errorf("group %s: %d %+v, want its own, spent, budget", smallName, code, group)
	}

	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`slogate_slo_error_budget_remaining_ratio{group="job=\"small\"",job="small",service="shop",slo="shop-availability"}`,
		`slogate_slo_groups{service="shop",slo="shop-availability"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
