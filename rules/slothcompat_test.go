package rules_test

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
)

// slothCompatDir holds Sloth's example specs and, in _gen/, the rules
// Sloth generated for them (see its README.md).
var slothCompatDir = filepath.Join("..", "testdata", "rules", "sloth-compat")

// slothExamples are the examples compared: events and raw SLIs, several
// SLOs of one service, alerts with and without user labels and
// annotations, Sloth's rule_intervals and info_labels plugins, and
// OpenSLO's good/total with its alerts turned off. (An SLO without alerts
// is TestSlothNoAlerts.)
var slothExamples = []string{"getting-started", "home-wifi", "raw-home-wifi", "contrib-slo-plugins", "openslo-getting-started"}

// slothDifference is a known difference between `slogate rules --style
// sloth` and Sloth's generated rules, with why it stays. apply edits the
// rules of one example, both sides, so that everything else compares
// exactly, and says whether it found anything to edit: a difference that
// applies to no example fails the test, so that the list stays true.
type slothDifference struct {
	what, why string
	apply     func(got, want *rulefmt.RuleGroups) bool
}

var slothDifferences = []slothDifference{
	{
		what: "Sloth's rules carry the label cmd=examplesgen.sh",
		why: "Sloth's scripts/examplesgen.sh generates its examples with `sloth generate --extra-labels cmd=examplesgen.sh`; " +
			"slogate rules has no such flag: labels are part of the spec",
		apply: func(_, want *rulefmt.RuleGroups) bool {
			found := false
			eachRule(want, func(_ string, r *rulefmt.Rule) {
				if r.Labels["cmd"] == "examplesgen.sh" {
					delete(r.Labels, "cmd")
					found = true
				}
			})
			return found
		},
	},
	{
		what: "sloth_version on sloth_slo_info is " + rules.SlothVersion + ", not Sloth's version (dev, for the build that generated the examples)",
		why:  "the label names the generator; slogate's output does not change with slogate's version",
		apply: func(_, want *rulefmt.RuleGroups) bool {
			found := false
			eachRule(want, func(_ string, r *rulefmt.Rule) {
				if r.Record == rules.SlothInfoMetric && r.Labels["sloth_version"] == "dev" {
					r.Labels["sloth_version"] = rules.SlothVersion
					found = true
				}
			})
			return found
		},
	},
	{
		what: "alerting rules of SLOs sharing an alert name and labels carry sloth_id, sloth_service and sloth_slo",
		why: "promtool check rules refuses such rules as duplicates (Sloth's own output for the example fails it); " +
			"the alerts carry these labels anyway, from the series they read, so they are the same alerts",
		apply: func(got, want *rulefmt.RuleGroups) bool {
			found := false
			for i := range got.Groups {
				g := &got.Groups[i]
				id, ok := strings.CutPrefix(g.Name, "sloth-slo-alerts-")
				w := findGroup(want, g.Name)
				if !ok || w == nil || len(w.Rules) != len(g.Rules) {
					continue
				}
				for j, r := range g.Rules {
					if _, inWant := w.Rules[j].Labels["sloth_id"]; r.Labels["sloth_id"] == id && !inWant {
						delete(r.Labels, "sloth_id")
						delete(r.Labels, "sloth_service")
						delete(r.Labels, "sloth_slo")
						found = true
					}
				}
			}
			return found
		},
	},
	{
		what: "OpenSLO SLOs have alerts",
		why: "Sloth's OpenSLO reader turns off the page and ticket alerts of every OpenSLO SLO; slogate alerts on every SLO " +
			"whose definition does not turn the alerts off, and an OpenSLO v1alpha SLO cannot",
		apply: func(got, want *rulefmt.RuleGroups) bool {
			openSLO := map[string]bool{} // alerting groups of OpenSLO SLOs
			eachRule(got, func(_ string, r *rulefmt.Rule) {
				if r.Record == rules.SlothInfoMetric && strings.HasPrefix(r.Labels["sloth_spec"], "openslo/") {
					openSLO["sloth-slo-alerts-"+r.Labels["sloth_id"]] = true
				}
			})
			n := len(got.Groups)
			got.Groups = slices.DeleteFunc(got.Groups, func(g rulefmt.RuleGroup) bool {
				return openSLO[g.Name] && findGroup(want, g.Name) == nil
			})
			return len(got.Groups) < n
		},
	},
}

func eachRule(groups *rulefmt.RuleGroups, fn func(group string, r *rulefmt.Rule)) {
	for i := range groups.Groups {
		for j := range groups.Groups[i].Rules {
			fn(groups.Groups[i].Name, &groups.Groups[i].Rules[j])
		}
	}
}

func parseRuleFile(t *testing.T, name string, content []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", name, errs)
	}
	return groups
}

// slothCompatRules loads a Sloth example with slogate, and returns its
// rules in the Sloth style (got) and those Sloth generated (want), both
// as Prometheus parses them, with the known differences applied; applied
// counts, per difference, the examples it applied to.
func slothCompatRules(t *testing.T, example string, applied []int) (got, want *rulefmt.RuleGroups) {
	t.Helper()
	out, err := rules.Render(load(t, filepath.Join(slothCompatDir, example+".yml")), rules.Options{Style: rules.StyleSloth})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(slothCompatDir, "_gen", example+".yml")
	gen, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, want = parseRuleFile(t, "slogate rules --style sloth", out), parseRuleFile(t, path, gen)
	for i, d := range slothDifferences {
		if d.apply(got, want) {
			applied[i]++
		}
	}
	return got, want
}

// normalizedExpr is expr as the PromQL parser prints it: the same query
// whatever its spacing, line breaks and label order.
func normalizedExpr(t *testing.T, expr string) string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return e.String()
}

// TestSlothCompat compares `slogate rules --style sloth` with the rules
// Sloth generated for its own examples, rule by rule: group names and
// intervals, rule names, labels, annotations and expressions (normalized
// by the PromQL parser), everything but the slothDifferences.
func TestSlothCompat(t *testing.T) {
	applied := make([]int, len(slothDifferences))
	compared := 0
	for _, example := range slothExamples {
		t.Run(example, func(t *testing.T) {
			got, want := slothCompatRules(t, example, applied)
			names := func(groups *rulefmt.RuleGroups) []string {
				var out []string
				for _, g := range groups.Groups {
					out = append(out, g.Name)
				}
				return out
			}
			if !slices.Equal(names(got), names(want)) {
				t.Fatalf("groups\ngot  %v\nwant %v", names(got), names(want))
			}
			for i, wg := range want.Groups {
				gg := got.Groups[i]
				if gg.Interval != wg.Interval {
					t.Errorf("group %s: interval %s, want %s", wg.Name, gg.Interval, wg.Interval)
				}
				if len(gg.Rules) != len(wg.Rules) {
					t.Errorf("group %s: %d rules, want %d", wg.Name, len(gg.Rules), len(wg.Rules))
					continue
				}
				for j, wr := range wg.Rules {
					gr := gg.Rules[j]
					at := fmt.Sprintf("group %s rule %d (%s%s)", wg.Name, j, wr.Record, wr.Alert)
					if gr.Record != wr.Record || gr.Alert != wr.Alert {
						t.Errorf("%s: got record %q alert %q", at, gr.Record, gr.Alert)
					}
					if gr.For != wr.For || gr.KeepFiringFor != wr.KeepFiringFor {
						t.Errorf("%s: for %s keep_firing_for %s, want %s %s", at, gr.For, gr.KeepFiringFor, wr.For, wr.KeepFiringFor)
					}
					if !maps.Equal(gr.Labels, wr.Labels) {
						t.Errorf("%s: labels\ngot  %v\nwant %v", at, gr.Labels, wr.Labels)
					}
					if !maps.Equal(gr.Annotations, wr.Annotations) {
						t.Errorf("%s: annotations\ngot  %v\nwant %v", at, gr.Annotations, wr.Annotations)
					}
					if g, w := normalizedExpr(t, gr.Expr), normalizedExpr(t, wr.Expr); g != w {
						t.Errorf("%s: expression\ngot  %s\nwant %s", at, g, w)
					}
					compared++
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	for i, d := range slothDifferences {
		if applied[i] == 0 {
			t.Errorf("the difference %q applies to no example: remove it", d.what)
		} else {
			t.Logf("known difference (%d examples): %s: %s", applied[i], d.what, d.why)
		}
	}
	t.Logf("%d rules of %d examples compared", compared, len(slothExamples))
}

// TestSlothCompatEvaluate evaluates the rules of TestSlothCompat, slogate's
// and Sloth's, with Prometheus's engine over the same four days of data
// (recordGroups: the 5m ratios recorded every minute, as the period's
// ratio reads them, the other rules at the end, the alerts' expressions
// too), and wants the same series with the same values: every recording
// and every firing alert, with its labels and $value. The end is inside
// an incident, so that alerts fire.
func TestSlothCompatEvaluate(t *testing.T) {
	end := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	// synth.History's last incident runs from 9.5 to 8.5 hours before end.
	at := end.Add(-8*time.Hour - 40*time.Minute)
	from := at.Add(-4 * 24 * time.Hour)
	data := slothExampleData(synth.History(end, time.Minute), from)
	for _, example := range slothExamples {
		t.Run(example, func(t *testing.T) {
			t.Parallel()
			// Which differences apply is TestSlothCompat's business.
			got, want := slothCompatRules(t, example, make([]int, len(slothDifferences)))
			_, gotSeries := recordGroups(t, data, got, from, at)
			_, wantSeries := recordGroups(t, data, want, from, at)
			for _, s := range slices.Sorted(maps.Keys(wantSeries)) {
				w := wantSeries[s]
				g, ok := gotSeries[s]
				switch {
				case !ok:
					t.Errorf("%s = %g: missing", s, w)
				case !(g == w || math.IsNaN(g) && math.IsNaN(w) || testenv.RelErr(g, w) <= 1e-12):
					t.Errorf("%s = %g, want %g", s, g, w)
				}
			}
			for s, g := range gotSeries {
				if _, ok := wantSeries[s]; !ok {
					t.Errorf("%s = %g: Sloth's rules do not give it", s, g)
				}
			}

			// Every rule must have given something, and the alerts must
			// fire: empty against empty proves nothing.
			recording, alerts, firing := 0, 0, 0
			eachRule(want, func(_ string, r *rulefmt.Rule) {
				if r.Record != "" {
					recording++
				} else {
					alerts++
				}
			})
			recorded := 0
			for s, v := range gotSeries {
				if strings.HasPrefix(s, `{__name__="ALERTS",`) {
					firing++
					t.Logf("firing: %s $value %g", s, v)
				} else if !math.IsNaN(v) {
					recorded++
				}
			}
			if recorded < recording {
				t.Errorf("%d series recorded (not NaN) by %d recording rules: the data does not exercise every rule", recorded, recording)
			}
			if alerts > 0 && firing == 0 {
				t.Errorf("none of the %d alerts fires: the data does not exercise them", alerts)
			}
		})
	}
}

// slothExampleData is history, from from to the end of tr, for the metrics
// of Sloth's examples: tr's requests as
// http_request_duration_seconds_count{job="myservice"|"myapp", code}, a
// fifth of the errors answered 429, and the satisfaction of four wifi
// clients, unifipoller_client_satisfaction_ratio, in waves of different
// periods around 0.95, 0.85, 0.72 and 0.55, so that some are below 0.75
// and 0.5 at times.
func slothExampleData(tr synth.Traffic, from time.Time) *testenv.MemStorage {
	m := testenv.NewMemStorage()
	requests := func(job, code string) labels.Labels {
		return labels.FromStrings(model.MetricNameLabel, "http_request_duration_seconds_count", "code", code, "job", job)
	}
	base := []float64{0.95, 0.85, 0.72, 0.55}
	period := []time.Duration{7 * time.Hour, 11 * time.Hour, 5 * time.Hour, 13 * time.Hour}
	tr.Samples(func(s synth.Sample) {
		if s.Skip || s.T.Before(from.Add(-10*time.Minute)) {
			return
		}
		ms := s.T.UnixMilli()
		for _, job := range []string{"myservice", "myapp"} {
			m.Add(requests(job, "200"), ms, s.Total-s.Errors)
			m.Add(requests(job, "500"), ms, s.Errors*0.8)
			m.Add(requests(job, "429"), ms, s.Errors*0.2)
		}
		for i, b := range base {
			phase := 2 * math.Pi * float64(s.T.Sub(tr.End)) / float64(period[i])
			m.Add(labels.FromStrings(model.MetricNameLabel, "unifipoller_client_satisfaction_ratio", "client", fmt.Sprintf("c%d", i)),
				ms, b+0.1*math.Sin(phase))
		}
	})
	return m
}
