package slo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
)

// nameRE is what metadata.name accepts: a DNS-subdomain-like name relaxed
// to allow '_' and upper case, because Sloth allows both
// (MyService-Requests) and a converted Sloth file must load as it was. The
// name is a label value and a URL path segment, where both are fine.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

const maxNameLen = 253

func checkName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is %d characters long; at most %d are allowed", len(name), maxNameLen)
	case !nameRE.MatchString(name):
		return "must consist of letters, digits, '-', '.' and '_', and start and end with a letter or digit"
	}
	return ""
}

// reservedSLOLabels are set by slogate on every SLO series and alert; a user
// label of the same name would collide with them.
var reservedSLOLabels = []string{"slo", "service", "window", "severity"}

// checkLabelName uses the legacy (pre-UTF-8) rules: the labels end up in
// alerts and generated rules, where older Alertmanagers and promtool
// still apply them.
func checkLabelName(name string, reserved []string) string {
	switch {
	case !model.LegacyValidation.IsValidLabelName(name):
		return fmt.Sprintf("invalid label name %q: use letters, digits and '_', not starting with a digit", name)
	case strings.HasPrefix(name, "__"):
		return fmt.Sprintf("label name %q is reserved: names starting with \"__\" are internal to Prometheus", name)
	case slices.Contains(reserved, name):
		return fmt.Sprintf("label name %q is reserved: slogate sets it itself", name)
	}
	return ""
}

// checkAlertName accepts the alert names Sloth and Prometheus accept:
// an alert name is the value of the alertname label, and promtool checks
// only recording-rule names, so myservice-high-error-rate is fine.
func checkAlertName(name string) string {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f || r == '{' || r == '}' || r == '"' }) {
		return fmt.Sprintf("invalid alert name %q: use letters, digits, '_', ':', '-' and '.'", name)
	}
	return ""
}

// didYouMean returns `; did you mean "x"?` when a candidate is close to
// name, or "".
func didYouMean(name string, candidates []string) string {
	if c := closest(name, candidates); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// separators are dropped before names are compared. Built once: building a
// Replacer costs far more than using it, and a hostile file can ask for a
// suggestion for each of a million unknown keys.
var separators = strings.NewReplacer("_", "", "-", "")

// closest returns the candidate nearest to name by edit distance, if it is
// near enough to be a typo; case and '_'/'-' differences count as exact
// (error_ratio vs errorRatio).
func closest(name string, candidates []string) string {
	norm := func(s string) string {
		return strings.ToLower(separators.Replace(s))
	}
	best, bestDist, bestRaw := "", -1, 0
	for _, c := range candidates {
		if c == name {
			continue
		}
		// Ties on the forgiving distance go to the literally closest name.
		d, raw := EditDistance(norm(name), norm(c)), EditDistance(name, c)
		if bestDist < 0 || d < bestDist || (d == bestDist && raw < bestRaw) {
			best, bestDist, bestRaw = c, d, raw
		}
	}
	if bestDist < 0 {
		return ""
	}
	limit := max(1, min(len(name), len(best))/3)
	if bestDist > limit {
		return ""
	}
	return best
}

// EditDistance is the Levenshtein distance behind "did you mean"
// suggestions (here and in the service configuration), bounded in cost by
// the short strings it is used on (field, key and definition names).
func EditDistance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
