package web

import (
	"errors"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
)

type runRow struct {
	ID, Experiment, State, Started, Duration, BudgetSpent, Reason string
	Active                                                        bool
}

type runsPage struct {
	Experiment string
	Runs       []runRow
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func runsView(exp string, runs []*store.Run, now time.Time) runsPage {
	v := runsPage{Experiment: exp}
	for _, r := range runs {
		v.Runs = append(v.Runs, runRowOf(r, now))
	}
	return v
}

func runRowOf(r *store.Run, now time.Time) runRow {
	row := runRow{
		ID: r.ID, Experiment: r.Experiment, State: string(r.State), Reason: r.Reason,
		Started:     fmtTime(r.StartedAt),
		BudgetSpent: fmtPct(evaluator.Num(r.BudgetSpent), 2),
		Active:      !r.State.Terminal(),
	}
	if r.EndedAt != nil {
		row.Duration = fmtDur(r.EndedAt.Sub(r.StartedAt))
	} else {
		row.Duration = fmtDur(now.Sub(r.StartedAt)) + " so far"
	}
	return row
}

type timelineRow struct {
	At, Subject, Value, Verdict, Message string
	// Baseline is what a relative tolerance compared Value with; "" for
	// entries without one.
	Baseline string
	// State marks a run state change rather than a measurement.
	State bool
}

type runPage struct {
	Run      runRow
	Finished string
	Ended    string
	Timeline []timelineRow
	// HasBaseline shows the baseline column: some probe of the run has a
	// relative tolerance.
	HasBaseline bool
	Strip       template.HTML
}

func runView(r *store.Run, now time.Time) runPage {
	v := runPage{Run: runRowOf(r, now), Finished: "–", Ended: "–"}
	if r.FinishedAt != nil {
		v.Finished = fmtTime(*r.FinishedAt)
	}
	if r.EndedAt != nil {
		v.Ended = fmtTime(*r.EndedAt)
	}
	var rows []stripRow
	index := map[string]int{}
	var marks []stripMark
	end := r.StartedAt
	for _, e := range r.Timeline {
		subject := timelineSubject(e)
		row := timelineRow{At: e.At.UTC().Format("15:04:05"), Subject: subject, Verdict: e.Verdict, Message: e.Message, Value: "–"}
		if e.Value != nil {
			row.Value = timelineValue(e)
		}
		if e.Baseline != nil {
			// Side by side, both as precise as the hypotheses page shows them.
			row.Baseline, v.HasBaseline = fmtNum(evaluator.Num(*e.Baseline)), true
			if e.Value != nil {
				row.Value = fmtNum(evaluator.Num(*e.Value))
			}
		}
		if e.Repeats > 0 {
			row.Message = strings.TrimSpace(fmt.Sprintf("%s (the previous outcome held for %d more evaluations)", row.Message, e.Repeats))
		}
		if e.At.After(end) {
			end = e.At
		}
		if subject == "" {
			row.State = true
			marks = append(marks, stripMark{At: e.At, Label: e.Verdict})
		} else {
			i, ok := index[subject]
			if !ok {
				i = len(rows)
				index[subject] = i
				rows = append(rows, stripRow{Label: subject})
			}
			title := e.At.UTC().Format("15:04:05") + " " + subject + ": " + e.Verdict
			switch {
			case e.Value != nil && e.Baseline != nil:
				title += " (value " + row.Value + ", baseline " + row.Baseline + ")"
			case e.Value != nil:
				title += " (value " + row.Value + ")"
			}
			if e.Message != "" {
				title += " — " + e.Message
			}
			rows[i].Entries = append(rows[i].Entries, stripCell{At: e.At, Verdict: e.Verdict, Title: title})
		}
		v.Timeline = append(v.Timeline, row)
	}
	if r.EndedAt != nil {
		end = *r.EndedAt
	} else if now.After(end) {
		end = now
	}
	if len(rows) > 0 || len(marks) > 1 {
		v.Strip = verdictStrip(rows, marks, r.StartedAt, end)
	}
	return v
}

// timelineSubject names what an entry measured: a probe, an SLO's budget
// spend, a whole hypothesis; "" for a state change of the run.
func timelineSubject(e store.TimelineEntry) string {
	switch {
	case e.Probe != "":
		return e.Hypothesis + "/" + e.Probe
	case e.Hypothesis != "":
		return e.Hypothesis
	case e.SLO != "":
		return "budget spent: " + e.SLO
	}
	return ""
}

func timelineValue(e store.TimelineEntry) string {
	if e.SLO != "" && e.Probe == "" && e.Hypothesis == "" {
		return fmtPct(evaluator.Num(*e.Value), 3)
	}
	return fmtFloat(*e.Value)
}
