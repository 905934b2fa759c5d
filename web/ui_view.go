package web

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// View models: the templates only lay out what is computed here, so the
// decisions (colours, what counts as hot, how NaN reads) are Go and tested.

// overviewBurnWindows are the burn-rate columns of the overview: the
// windows the alert tiers look at.
var overviewBurnWindows = []time.Duration{5 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

type cell struct {
	Text  string
	Class string
	Title string
}

type alertCell struct {
	Severity  string
	Firing    bool
	Enabled   bool
	Unknown   bool
	Condition string
	Title     string
	// LowTraffic: a tier counted fewer events than its minEvents, so the
	// alert can neither fire nor resolve. Note says so with the numbers
	// on the SLO's page.
	LowTraffic bool
	Note       string
}

type sloRow struct {
	Name, Service, Objective, Window, SLI string
	Budget                                cell
	BudgetBar                             template.HTML
	Burns                                 []cell
	Alerts                                []alertCell
	Fresh                                 bool
	StaleTitle                            string
	// Groups summarises the groups of a grouped SLO; IsGroup marks the
	// row of one group, Label its label values.
	Groups  string
	IsGroup bool
	Label   string
	// MoreGroups is how many groups of this grouped SLO the overview
	// leaves out.
	MoreGroups int
}

type gateRow struct {
	Experiment string
	Status     string
	Reasons    []api.Reason
	Hypotheses []string
	SLOs       []string
	Policy     string
	// Summary is the first reason, More how many follow: the overview has
	// room for one line per gate.
	Summary string
	More    int
}

type overviewPage struct {
	SLOs                  int
	Firing                int
	Open, Closed, Unknown int
	LastCycle, LastGood   string
	LastCycleAgo          string
	Rows                  []sloRow
	BurnHeads             []string
	// Groups is how many groups of grouped SLOs are followed.
	Groups                   int
	Gates                    []gateRow
	NoDefinitions, NotReady  bool
	Hypotheses, Experiments  int
	FailingHyps, UnknownHyps int
}

func (s *Server) overviewView(snap *evaluator.Snapshot) overviewPage {
	v := overviewPage{}
	for _, w := range overviewBurnWindows {
		v.BurnHeads = append(v.BurnHeads, windowLabel(w))
	}
	statuses := statusesByName(snap)
	for _, st := range snap.SLOs() {
		for _, a := range alertCells(st.Alerts, st.Fresh) {
			if a.Firing {
				v.Firing++
			}
		}
		// A group is listed under its parent, unless the parent is not
		// here to list it.
		if p, ok := statuses[st.Parent]; ok && p.Groups != nil && slices.Contains(p.Groups.Members, st.Name) {
			continue
		}
		row := sloRowOf(st)
		v.SLOs++
		if st.Groups == nil {
			v.Rows = append(v.Rows, row)
			continue
		}
		row.Groups = groupSummary(st.Groups)
		groups := groupRows(st, statuses)
		v.Groups += len(groups)
		if len(groups) > overviewGroups {
			row.MoreGroups = len(groups) - overviewGroups
			groups = groups[:overviewGroups]
		}
		v.Rows = append(v.Rows, row)
		v.Rows = append(v.Rows, groups...)
	}
	for _, h := range snap.Hypotheses() {
		v.Hypotheses++
		switch h.Verdict {
		case slo.Fail:
			v.FailingHyps++
		case slo.Unknown:
			v.UnknownHyps++
		}
	}
	v.Gates = s.gates(snap)
	v.Experiments = len(v.Gates)
	for _, g := range v.Gates {
		switch g.Status {
		case string(api.GateOpen):
			v.Open++
		case string(api.GateClosed):
			v.Closed++
		default:
			v.Unknown++
		}
	}
	last, good := snap.LastCycle()
	v.LastCycle, v.LastGood = fmtTime(last), fmtTime(good)
	if !last.IsZero() {
		v.LastCycleAgo = fmtDur(snap.ReadAt().Sub(last)) + " ago"
	}
	v.NotReady = !snap.Ready()
	v.NoDefinitions = v.SLOs == 0 && v.Hypotheses == 0 && v.Experiments == 0
	return v
}

func sloRowOf(st evaluator.SLOStatus) sloRow {
	row := sloRow{
		Name: st.Name, Service: st.Service, Window: st.Window,
		Objective: strconv.FormatFloat(st.Objective, 'f', -1, 64) + "%",
		SLI:       fmtPct(st.SLI, sliDecimals(st.Objective)),
		Budget:    cell{Text: fmtPct(st.BudgetRemaining, 1), Class: budgetClass(st.BudgetRemaining)},
		BudgetBar: budgetBar(st.BudgetRemaining),
		Fresh:     st.Fresh,
		Alerts:    alertCells(st.Alerts, st.Fresh),
	}
	for _, w := range overviewBurnWindows {
		row.Burns = append(row.Burns, burnCell(st, w))
	}
	if !st.Fresh {
		row.StaleTitle = staleTitle(st)
	}
	return row
}

func staleTitle(st evaluator.SLOStatus) string {
	t := "last successful evaluation: " + fmtTime(st.LastSuccess)
	if st.Error != "" {
		t = st.Error + " (" + t + ")"
	}
	return t
}

// sliDecimals shows one digit more than the objective has, so that 99.95 %
// against a 99.9 % objective does not round to the objective.
func sliDecimals(objective float64) int {
	s := strconv.FormatFloat(objective, 'f', -1, 64)
	d := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		d = len(s) - i - 1
	}
	return min(max(d+1, 2), 6)
}

func burnCell(st evaluator.SLOStatus, w time.Duration) cell {
	ws, ok := st.WindowStatus(w)
	if !ok {
		return cell{Text: "–", Class: "muted", Title: "not evaluated for a " + st.Window + " SLO"}
	}
	c := cell{Text: fmtBurn(ws.BurnRate)}
	switch {
	case !ws.Complete:
		c.Class, c.Title = "muted", "window incomplete"
	case float64(ws.BurnRate) > 1:
		// Above 1 the budget runs out before the window ends.
		c.Class, c.Title = "hot", "burning faster than the budget allows"
	}
	return c
}

// alertCells describes the alert tiers. Without fresh data an alert that
// is not firing is unknown, not "ok": the evaluator keeps the last state
// rather than resolving on a hole, and nobody should read that as healthy.
func alertCells(alerts []evaluator.AlertStatus, fresh bool) []alertCell {
	out := make([]alertCell, 0, len(alerts))
	for _, a := range alerts {
		c := alertCell{Severity: string(a.Severity), Firing: a.Firing, Enabled: a.Enabled, Condition: a.Condition}
		switch {
		case !a.Enabled:
			c.Title = "disabled"
		case !fresh && !a.Firing:
			c.Unknown = true
			c.Title = "unknown: no fresh data (the alert keeps its last state, not firing)"
		case a.Firing:
			c.Title = a.Condition
			if a.Since != nil {
				c.Title += " since " + fmtTime(*a.Since)
			}
		case a.LowTraffic:
			// Not "ok": with too few events the alert holds its state, and
			// a burn that would page goes unseen.
			c.LowTraffic = true
			c.Title = "low traffic: a tier counted fewer events than its minEvents; the alert neither fires nor resolves"
		default:
			c.Title = "not firing; highest long-window burn rate " + fmtBurn(a.BurnRate)
		}
		out = append(out, c)
	}
	return out
}

// gates answers every experiment's gate, in definition order.
func (s *Server) gates(snap *evaluator.Snapshot) []gateRow {
	var out []gateRow
	answers := s.opts.Runs.GatesIn(snap)
	for i, e := range snap.Definitions().Experiments {
		ans := answers[i]
		g := gateRow{
			Experiment: e.Name, Status: string(ans.Status), Reasons: ans.Reasons,
			Hypotheses: e.Hypotheses, SLOs: e.SLOs, Policy: experimentPolicy(e),
			Summary: "every hypothesis passes and every SLO allows a run",
		}
		if len(ans.Reasons) > 0 {
			g.Summary, g.More = ans.Reasons[0].Message, len(ans.Reasons)-1
		}
		out = append(out, g)
	}
	return out
}

func experimentPolicy(e *slo.Experiment) string {
	var parts []string
	if e.MaxBudgetSpend > 0 {
		parts = append(parts, "max budget spend "+fmtPct(evaluator.Num(e.MaxBudgetSpend), 1))
	}
	if e.MaxDuration > 0 {
		parts = append(parts, "max duration "+fmtDur(e.MaxDuration))
	}
	if e.Recovery > 0 {
		parts = append(parts, "recovery "+fmtDur(e.Recovery))
	}
	onUnknown := string(e.OnUnknown)
	if onUnknown == "" {
		onUnknown = string(slo.GateClosed)
	}
	return strings.Join(append(parts, "on unknown: "+onUnknown), " · ")
}

type windowRow struct {
	Window, SLI, Bad, Total string
	// Coverage is the share of the window history covers, when below 1.
	Coverage    string
	Burn        cell
	Complete    bool
	IsSLOWindow bool
}

type tierRow struct {
	Severity            string
	Long, Short         string
	Factor              string
	LongBurn, ShortBurn cell
	Firing, Enabled     bool
	// LowTraffic is set when the tier's long window counted fewer events
	// than the tier's minEvents: the text says how many.
	LowTraffic string
}

type chartView struct {
	Title, Caption string
	SVG            template.HTML
}

type sloPage struct {
	Status      evaluator.SLOStatus
	Row         sloRow
	Description string
	Labels      []string
	Windows     []windowRow
	Tiers       []tierRow
	Charts      []chartView
	Gate        string
	Experiments []string
	Evaluated   string
	LastSuccess string
	// Period describes a calendar SLO's period and the time left in it;
	// empty for a rolling window.
	Period, PeriodLeft string
	// Forecast is the budget forecast in words, Exhaustion its headline.
	Forecast, Exhaustion string
	ExhaustionClass      string
	// Groups are the groups of a grouped SLO; Group and Parent say which
	// group of which SLO this one is.
	Groups        *groupsView
	Group, Parent string
}

func (s *Server) sloView(snap *evaluator.Snapshot, st evaluator.SLOStatus) sloPage {
	v := sloPage{Status: st, Row: sloRowOf(st), Description: st.Description,
		Evaluated: fmtTime(st.EvaluatedAt), LastSuccess: fmtTime(st.LastSuccess)}
	for k, val := range st.Labels {
		v.Labels = append(v.Labels, k+"="+val)
	}
	sort.Strings(v.Labels)
	if p := st.Period; p != nil {
		v.Period, v.PeriodLeft = periodText(p)
	}
	if f := st.Forecast; f != nil {
		v.Exhaustion, v.ExhaustionClass, v.Forecast = forecastText(f, st.Period != nil)
	}
	if st.Groups != nil {
		v.Groups = groupsViewOf(st, statusesByName(snap))
	}
	if st.Parent != "" {
		v.Parent = st.Parent
		var by []string
		if p, ok := snap.SLO(st.Parent); ok && p.Groups != nil {
			by = p.Groups.By
		}
		v.Group = groupText(by, st.Group)
	}
	// A group's definition is not among the definitions loaded: the
	// snapshot derives it from its parent's.
	def := snap.SLODef(st.Name)
	var window time.Duration
	if def != nil {
		window = def.Window
	}
	for _, ws := range st.Windows {
		r := windowRow{Window: ws.Window, SLI: fmtPct(ws.SLI, sliDecimals(st.Objective)),
			Bad: fmtCount(ws.Bad), Total: fmtCount(ws.Total), Complete: ws.Complete,
			Burn: burnCell(st, ws.Duration), IsSLOWindow: ws.Duration == window}
		if ws.Coverage.Valid() && ws.Coverage < 1 {
			r.Coverage = fmtPct(ws.Coverage, 0)
		}
		v.Windows = append(v.Windows, r)
	}
	if def == nil {
		return v
	}
	tiers := def.TiersAt(st.EvaluatedAt) // a calendar period's length sets the factors
	for _, t := range tiers {
		r := tierRow{Severity: string(t.Severity), Long: windowLabel(t.Long), Short: windowLabel(t.Short),
			Factor: strconv.FormatFloat(t.Factor, 'f', -1, 64)}
		r.LongBurn, r.ShortBurn = tierBurn(st, t.Long, t.Factor), tierBurn(st, t.Short, t.Factor)
		for _, a := range st.Alerts {
			if string(a.Severity) == r.Severity {
				r.Enabled = a.Enabled
				r.Firing = a.Firing && a.Condition == tierCondition(t)
			}
		}
		r.LowTraffic = tierLowTraffic(st, t, def.AlertTierOf(t.Severity).MinEvents)
		v.Tiers = append(v.Tiers, r)
	}
	for i, c := range v.Row.Alerts {
		if c.LowTraffic {
			v.Row.Alerts[i].Note = alertLowTraffic(st, tiers, slo.Severity(c.Severity), def.AlertTierOf(slo.Severity(c.Severity)).MinEvents)
		}
	}
	v.Gate = gatePolicy(def.Gate)
	// A group guards its parent's experiments when every group must meet
	// the gate.
	guarded := st.Name
	if st.Parent != "" && def.GroupPolicyOrDefault() == slo.GroupsEach {
		guarded = st.Parent
	}
	for _, e := range snap.Definitions().Experiments {
		for _, n := range e.SLOs {
			if n == guarded {
				v.Experiments = append(v.Experiments, e.Name)
			}
		}
	}
	v.Charts = sloCharts(snap, def, tiers)
	return v
}

// tierCondition is how the evaluator words a firing tier, to tell which of
// a severity's tiers fired.
func tierCondition(t slo.BurnTier) string {
	return "burn rate > " + strconv.FormatFloat(t.Factor, 'g', -1, 64) + " over " + windowLabel(t.Long) + " and " + windowLabel(t.Short)
}

func tierBurn(st evaluator.SLOStatus, w time.Duration, factor float64) cell {
	ws, ok := st.WindowStatus(w)
	if !ok || !ws.Complete {
		return cell{Text: "–", Class: "muted", Title: "window incomplete"}
	}
	c := cell{Text: fmtBurn(ws.BurnRate)}
	if float64(ws.BurnRate) > factor {
		c.Class, c.Title = "hot", "above the factor"
	}
	return c
}

// tierLowTraffic says how few events tier t's long window counted when
// they are fewer than minEvents (as slo.CheckTiersGuarded judges it); ""
// when the tier has enough, or no guard.
func tierLowTraffic(st evaluator.SLOStatus, t slo.BurnTier, minEvents float64) string {
	if minEvents <= 0 {
		return ""
	}
	ws, ok := st.WindowStatus(t.Long)
	if ok && float64(ws.Total) >= minEvents {
		return ""
	}
	counted := "–"
	if ok {
		counted = fmtCount(ws.Total)
	}
	return "low traffic: " + counted + " events over " + windowLabel(t.Long) + ", fewer than " + fmtMinEvents(minEvents)
}

// alertLowTraffic is a severity held off by minEvents in words, with the
// long windows that counted too few.
func alertLowTraffic(st evaluator.SLOStatus, tiers []slo.BurnTier, sev slo.Severity, minEvents float64) string {
	var windows []string
	for _, t := range tiers {
		if t.Severity == sev && tierLowTraffic(st, t, minEvents) != "" {
			windows = append(windows, windowLabel(t.Long))
		}
	}
	s := string(sev) + ": low traffic (fewer than " + fmtMinEvents(minEvents) + " events"
	if len(windows) > 0 {
		s += " over " + strings.Join(windows, " and ")
	}
	return s + "); it neither fires nor resolves"
}

// fmtMinEvents is a minEvents as written in the definition.
func fmtMinEvents(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func gatePolicy(g slo.GatePolicy) string {
	var parts []string
	if g.MinBudgetRemaining != nil {
		parts = append(parts, "budget remaining ≥ "+fmtPct(evaluator.Num(*g.MinBudgetRemaining), 1))
	}
	if g.MaxBurnRate != nil {
		w := g.BurnRateWindow
		if w <= 0 {
			w = time.Hour
		}
		parts = append(parts, "burn rate over "+windowLabel(w)+" ≤ "+fmtFloat(*g.MaxBurnRate))
	}
	s := strings.Join(parts, " and ")
	if g.MinEvents > 0 && s != "" {
		s += ", each judged only on at least " + fmtMinEvents(g.MinEvents) + " events over its window (fewer: " + policyName(g.OnLowTraffic) + ")"
	}
	return s
}

func sloCharts(snap *evaluator.Snapshot, def *slo.SLO, tiers []slo.BurnTier) []chartView {
	h, ok := snap.History(def.Name)
	if !ok {
		return nil
	}
	var burnThr []threshold
	seen := map[float64]bool{}
	for _, t := range tiers {
		if seen[t.Factor] {
			continue
		}
		seen[t.Factor] = true
		burnThr = append(burnThr, threshold{Value: t.Factor, Label: string(t.Severity) + " " + fmtFloat(t.Factor), Class: "thr-" + string(t.Severity)})
	}
	budgetThr := []threshold{{Value: 0, Label: "exhausted", Class: "thr-zero"}}
	if g := def.Gate.MinBudgetRemaining; g != nil {
		budgetThr = append(budgetThr, threshold{Value: *g, Label: "gate " + fmtPct(evaluator.Num(*g), 0), Class: "thr-gate"})
	}
	one := 1.0
	pct := func(v float64) string { return fmtPct(evaluator.Num(v), 0) }
	charts := []struct {
		title  string
		points []evaluator.Point
		c      lineChart
	}{
		{"Error budget remaining, last 24h (hourly)", h.BudgetRemaining, lineChart{Thresholds: budgetThr, Include: []float64{0}, FixedMax: &one, Format: pct}},
		{"Burn rate over 1h, last 24h (hourly)", h.BurnRate1h, lineChart{Thresholds: burnThr, Include: []float64{0}}},
		{"Burn rate over 5m, last 6h (every 5 minutes)", h.BurnRate5m, lineChart{Thresholds: burnThr, Include: []float64{0}}},
	}
	var out []chartView
	for _, c := range charts {
		c.c.Title, c.c.Points = c.title, c.points
		f := c.c.Format
		if f == nil {
			f = fmtFloat
		}
		out = append(out, chartView{Title: c.title, SVG: c.c.SVG(), Caption: seriesCaption(c.points, f)})
	}
	return out
}

// seriesCaption summarises a series in words: the chart's numbers for
// those who cannot see it, and the gaps counted.
func seriesCaption(ps []evaluator.Point, f func(float64) string) string {
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	last := "–"
	for _, p := range ps {
		if !p.Value.Valid() {
			continue
		}
		v := float64(p.Value)
		lo, hi, n = math.Min(lo, v), math.Max(hi, v), n+1
		last = f(v)
	}
	if n == 0 {
		return "no data in this period"
	}
	s := "min " + f(lo) + " · max " + f(hi) + " · latest " + last
	if gaps := len(ps) - n; gaps > 0 {
		s += " · " + strconv.Itoa(gaps) + " of " + strconv.Itoa(len(ps)) + " points without data"
	}
	return s
}

func fmtCount(n evaluator.Num) string {
	if !n.Valid() {
		return "–"
	}
	v := float64(n)
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// windowLabel names a window the way definitions, metrics and the
// evaluator's alert conditions do (1h, 3d).
func windowLabel(d time.Duration) string { return slo.FormatDuration(d) }

// forecastText is a budget forecast as the SLO page shows it: a headline
// (when the budget runs out, or that it lasts), its class, and the rest.
func forecastText(f *evaluator.ForecastStatus, calendar bool) (headline, class, detail string) {
	horizon := "a " + windowLabel(time.Duration(f.Horizon*float64(time.Second))) + " window from now"
	if calendar {
		horizon = "the end of the period"
	}
	detail = fmt.Sprintf("at the burn rate of the last %s (%s×), %s of the budget left at %s", f.Window, fmtBurn(f.BurnRate), fmtPct(f.BudgetAtEnd, 1), horizon)
	switch {
	case !f.ExhaustedIn.Valid():
		return "budget lasts", "ok", detail
	case f.ExhaustedIn == 0:
		return "budget spent", "bad", detail
	}
	return "budget spent in " + fmtSpan(float64(f.ExhaustedIn)), "warn", detail
}

// fmtSpan writes seconds as days and hours, or hours and minutes.
func fmtSpan(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second)).Round(time.Minute)
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	if days > 0 {
		return fmt.Sprintf("%dd %dh", days, rest/time.Hour)
	}
	return fmt.Sprintf("%dh %dm", rest/time.Hour, rest%time.Hour/time.Minute)
}

// periodText is a calendar period as the SLO page shows it: when it runs
// (in its own time zone) and how long is left of it.
func periodText(p *evaluator.PeriodStatus) (period, left string) {
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	const layout = "2006-01-02 15:04"
	period = p.Start.In(loc).Format(layout) + " – " + p.End.In(loc).Format(layout) + " " + p.TimeZone
	return period, fmtSpan(p.TimeLeft)
}
