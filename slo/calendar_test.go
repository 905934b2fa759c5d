package slo

import (
	"testing"
	"time"
)

func TestCalendarPeriod(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }
	tests := []struct {
		name       string
		cal        Calendar
		at         time.Time
		start, end time.Time
	}{
		{"month, UTC", Calendar{Unit: CalendarMonth}, utc(2026, 2, 14, 12, 0), utc(2026, 2, 1, 0, 0), utc(2026, 3, 1, 0, 0)},
		{"a period's start belongs to the period before", Calendar{Unit: CalendarMonth}, utc(2026, 3, 1, 0, 0), utc(2026, 2, 1, 0, 0), utc(2026, 3, 1, 0, 0)},
		{"just after the start", Calendar{Unit: CalendarMonth}, utc(2026, 3, 1, 0, 0).Add(time.Nanosecond), utc(2026, 3, 1, 0, 0), utc(2026, 4, 1, 0, 0)},
		{"week starts on Monday", Calendar{Unit: CalendarWeek}, utc(2026, 12, 5, 11, 0), utc(2026, 11, 30, 0, 0), utc(2026, 12, 7, 0, 0)},
		{"quarter", Calendar{Unit: CalendarQuarter}, utc(2026, 12, 5, 11, 0), utc(2026, 10, 1, 0, 0), utc(2027, 1, 1, 0, 0)},
		{"year", Calendar{Unit: CalendarYear}, utc(2026, 12, 5, 11, 0), utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0)},
		{"leap year", Calendar{Unit: CalendarYear}, utc(2028, 7, 1, 0, 0), utc(2028, 1, 1, 0, 0), utc(2029, 1, 1, 0, 0)},
		// November 2026 in New York: EDT (-4) at the start, EST (-5) at
		// the end, one hour longer than 30 days.
		{"month across the end of daylight saving", Calendar{Unit: CalendarMonth, Location: ny}, utc(2026, 11, 10, 0, 0), utc(2026, 11, 1, 4, 0), utc(2026, 12, 1, 5, 0)},
		{"month across its start", Calendar{Unit: CalendarMonth, Location: ny}, utc(2026, 3, 20, 0, 0), utc(2026, 3, 1, 5, 0), utc(2026, 4, 1, 4, 0)},
		{"half-hour zone", Calendar{Unit: CalendarMonth, Location: kolkata}, utc(2026, 2, 28, 18, 31), utc(2026, 2, 28, 18, 30), utc(2026, 3, 31, 18, 30)},
		{"anchored on the 15th", Calendar{Unit: CalendarMonth, Anchor: utc(2022, 1, 15, 0, 0)}, utc(2026, 12, 5, 0, 0), utc(2026, 11, 15, 0, 0), utc(2026, 12, 15, 0, 0)},
		{"weeks anchored on a Wednesday long before", Calendar{Unit: CalendarWeek, Anchor: utc(2001, 1, 3, 6, 0)}, utc(2026, 12, 5, 0, 0), utc(2026, 12, 2, 6, 0), utc(2026, 12, 9, 6, 0)},
		{"before the anchor", Calendar{Unit: CalendarMonth, Anchor: utc(2030, 1, 1, 0, 0)}, utc(2026, 12, 5, 0, 0), utc(2026, 12, 1, 0, 0), utc(2027, 1, 1, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := tt.cal.Period(tt.at)
			if !start.Equal(tt.start) || !end.Equal(tt.end) {
				t.Errorf("Period(%s) = (%s, %s], want (%s, %s]", tt.at, start, end, tt.start, tt.end)
			}
			if l := end.Sub(start); l < tt.cal.Unit.Shortest() || l > tt.cal.Unit.Longest() {
				t.Errorf("period of %s outside [%s, %s]", l, tt.cal.Unit.Shortest(), tt.cal.Unit.Longest())
			}
		})
	}
}

// TestCalendarTiers: the factors follow the period's real length.
func TestCalendarTiers(t *testing.T) {
	o := &SLO{Objective: 99, Window: CalendarMonth.Longest(), Calendar: &Calendar{Unit: CalendarMonth}}
	feb := o.TiersAt(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC))
	mar := o.TiersAt(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
	// 2 % of the budget in 1h: 0.02 × 28 × 24 = 13.44 in February, 14.88 in March.
	if feb[0].Factor != 13.44 || mar[0].Factor != 14.88 {
		t.Errorf("page factors %v (February) and %v (March), want 13.44 and 14.88", feb[0].Factor, mar[0].Factor)
	}
	if got := o.WindowName(); got != "month" {
		t.Errorf("WindowName %q, want month", got)
	}
	for _, u := range CalendarUnits {
		if ws := Windows(u.Longest()); ws[len(ws)-2] >= u.Shortest() {
			t.Errorf("%s: windows %v: the standard ones must be shorter than the shortest period", u, ws)
		}
	}
}

func TestLoadCalendarWindows(t *testing.T) {
	set, diags := Load("../testdata/definitions/calendar/calendar.yaml")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	for _, tt := range []struct {
		slo        string
		unit       CalendarUnit
		zone       string
		at         time.Time
		start, end string
	}{
		{"checkout-monthly", CalendarMonth, "Europe/Berlin", time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC), "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z"},
		{"checkout-quarterly", CalendarQuarter, "America/New_York", time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), "2026-10-01T04:00:00Z", "2027-01-01T05:00:00Z"},
	} {
		o := set.SLO(tt.slo)
		if o == nil || o.Calendar == nil {
			t.Fatalf("%s: not a calendar SLO: %+v", tt.slo, o)
		}
		if o.Calendar.Unit != tt.unit || o.Calendar.Location.String() != tt.zone || o.Window != tt.unit.Longest() {
			t.Errorf("%s: calendar %s, window %s", tt.slo, o.Calendar, o.Window)
		}
		start, end := o.Calendar.Period(tt.at)
		if start.Format(time.RFC3339) != tt.start || end.Format(time.RFC3339) != tt.end {
			t.Errorf("%s: period (%s, %s], want (%s, %s]", tt.slo, start.Format(time.RFC3339), end.Format(time.RFC3339), tt.start, tt.end)
		}
	}
}
