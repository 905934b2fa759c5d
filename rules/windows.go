package rules

import (
	"github.com/prometheus/prometheus/model/rulefmt"
)

// windowRules record the error ratio of every window straight from the
// indicator queries with the window filled in. The result is exact at
// every evaluation, and costs Prometheus a read of the whole window each
// time: a 30d window reads a month of samples every evaluation interval.
func windowRules(s *sli) ([]rulefmt.Rule, error) {
	lbls := sloLabels(s.o)
	var out []rulefmt.Rule
	for _, w := range RecordedWindows(s.o) {
		e, err := s.ratio(w)
		if err != nil {
			return nil, err
		}
		out = append(out, rulefmt.Rule{Record: SLIErrorMetric(w), Expr: e.String(), Labels: lbls})
	}
	return out, nil
}
