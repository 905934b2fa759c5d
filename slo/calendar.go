package slo

import (
	"fmt"
	"time"
)

// CalendarUnit is the unit of a calendar window.
type CalendarUnit string

// Calendar units: a week starts on Monday, a quarter in January, April,
// July or October.
const (
	CalendarWeek    CalendarUnit = "week"
	CalendarMonth   CalendarUnit = "month"
	CalendarQuarter CalendarUnit = "quarter"
	CalendarYear    CalendarUnit = "year"
)

// CalendarUnits lists the units in the order of their length.
var CalendarUnits = []CalendarUnit{CalendarWeek, CalendarMonth, CalendarQuarter, CalendarYear}

// Calendar is a window made of consecutive calendar periods (months, say)
// in a time zone, instead of a rolling one: the error budget is the whole
// period's, counted from the period's start, and starts afresh at the next.
type Calendar struct {
	Unit CalendarUnit
	// Location is the time zone the periods are aligned in (UTC when not
	// given); their length follows it, daylight saving changes included.
	Location *time.Location
	// Anchor is the start of one period (OpenSLO's calendar.startTime);
	// the others follow it unit by unit. Zero: the unit's natural start
	// (the 1st of the month, Monday, 1 January...) at midnight.
	Anchor time.Time
}

// Longest is the longest a period of the unit can be: the window slice
// buffers are sized by it.
func (u CalendarUnit) Longest() time.Duration {
	day := 24 * time.Hour
	switch u {
	case CalendarWeek:
		return 7*day + time.Hour
	case CalendarMonth:
		return 31*day + time.Hour
	case CalendarQuarter:
		return 92*day + time.Hour
	default:
		return 366*day + time.Hour
	}
}

// Shortest is the shortest a period of the unit can be.
func (u CalendarUnit) Shortest() time.Duration {
	day := 24 * time.Hour
	switch u {
	case CalendarWeek:
		return 7*day - time.Hour
	case CalendarMonth:
		return 28*day - time.Hour
	case CalendarQuarter:
		return 90*day - time.Hour
	default:
		return 365*day - time.Hour
	}
}

// months is how many months a period of the unit spans; 0 for weeks.
func (u CalendarUnit) months() int {
	switch u {
	case CalendarMonth:
		return 1
	case CalendarQuarter:
		return 3
	case CalendarYear:
		return 12
	}
	return 0
}

// anchor is the start of one period, in c's location.
func (c *Calendar) anchor() time.Time {
	loc := c.location()
	if !c.Anchor.IsZero() {
		return c.Anchor.In(loc)
	}
	// 1 January 2024 was a Monday: the start of a week, a month, a
	// quarter and a year.
	return time.Date(2024, time.January, 1, 0, 0, 0, 0, loc)
}

func (c *Calendar) location() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// start returns the start of the k-th period after the anchor (k may be
// negative), built from the anchor's wall clock so that daylight saving
// changes move the period's length, not its start.
func (c *Calendar) start(k int) time.Time {
	a := c.anchor()
	y, m, d := a.Date()
	h, mi, s := a.Clock()
	if n := c.Unit.months(); n > 0 {
		return time.Date(y, m+time.Month(k*n), d, h, mi, s, a.Nanosecond(), a.Location())
	}
	return time.Date(y, m, d+7*k, h, mi, s, a.Nanosecond(), a.Location())
}

// Period returns the period that holds t: start < t ≤ end. A slice ends at
// its evaluation time, so the evaluation at a period's very start measures
// the last slice of the period before.
func (c *Calendar) Period(t time.Time) (start, end time.Time) {
	// Estimate the period's index from the average length, then step to
	// the right one.
	avg := (c.Unit.Shortest() + c.Unit.Longest()) / 2
	k := int(t.Sub(c.anchor()) / avg)
	for !c.start(k).Before(t) {
		k--
	}
	for c.start(k + 1).Before(t) {
		k++
	}
	return c.start(k).UTC(), c.start(k + 1).UTC()
}

// String is the calendar as written natively: "month", "week in Europe/Berlin".
func (c *Calendar) String() string {
	s := string(c.Unit)
	if loc := c.location(); loc != time.UTC {
		s += " in " + loc.String()
	}
	return s
}

// validate checks what the loaders cannot check field by field.
func (c *Calendar) validate() error {
	if c.Unit.months() > 0 && !c.Anchor.IsZero() && c.Anchor.In(c.location()).Day() > 28 {
		return fmt.Errorf("a %s starting on day %d has no such day in some months: start it on day 1 to 28", c.Unit, c.Anchor.In(c.location()).Day())
	}
	return nil
}

// WindowAt is the SLO window at t: for a rolling window (now-Window, now];
// for a calendar one, from the start of the period that holds t to t.
// length is the whole window's length: Window, or the period's.
func (o *SLO) WindowAt(t time.Time) (from time.Time, length time.Duration) {
	if o.Calendar == nil {
		return t.Add(-o.Window), o.Window
	}
	start, end := o.Calendar.Period(t)
	return start, end.Sub(start)
}

// WindowName names the SLO window: "30d", or the calendar unit ("month").
func (o *SLO) WindowName() string {
	if o.Calendar != nil {
		return string(o.Calendar.Unit)
	}
	return FormatDuration(o.Window)
}

// TiersAt returns the burn-rate conditions in force at t: Tiers, except
// that a calendar SLO's workbook factors are scaled to the length of the
// period that holds t (a 31-day month burns its budget at a lower factor
// than February).
func (o *SLO) TiersAt(t time.Time) []BurnTier {
	if o.Calendar == nil || o.Alerting.Tiers != nil {
		return o.Tiers()
	}
	_, length := o.WindowAt(t)
	return BurnTiers(length)
}
