package slo

import (
	"errors"
	"testing"
)

func TestDiagnostics(t *testing.T) {
	ds := Diagnostics{
		{Pos: Pos{File: "b.yaml", Line: 2, Col: 1}, Severity: LevelWarning, Message: "w"},
		{Pos: Pos{File: "a.yaml", Line: 10, Col: 3}, Severity: LevelError, Message: "second"},
		{Pos: Pos{File: "a.yaml", Line: 9, Col: 7}, Severity: LevelError, Message: "first"},
		{Pos: Pos{File: "a.yaml"}, Severity: LevelError, Message: "whole file"},
	}
	ds.sort()
	want := "a.yaml: error: whole file\n" +
		"a.yaml:9:7: error: first\n" +
		"a.yaml:10:3: error: second\n" +
		"b.yaml:2:1: warning: w\n"
	if got := ds.String(); got != want {
		t.Errorf("sorted:\n%s\nwant:\n%s", got, want)
	}
	if !ds.HasErrors() || len(ds.Errors()) != 3 || len(ds.Warnings()) != 1 {
		t.Errorf("HasErrors/Errors/Warnings disagree: %v %d %d", ds.HasErrors(), len(ds.Errors()), len(ds.Warnings()))
	}
	err := ds.Err()
	if err == nil {
		t.Fatal("Err() = nil with errors")
	}
	if got, want := err.Error(), "a.yaml: whole file\na.yaml:9:7: first\na.yaml:10:3: second"; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
	var d Diagnostic
	if !errors.As(err, &d) || d.Message != "whole file" {
		t.Errorf("errors.As(Err(), *Diagnostic) = %v", d)
	}
	if err := ds.Warnings().Err(); err != nil {
		t.Errorf("warnings only: Err() = %v, want nil", err)
	}
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{"plural and singular", Summary{SLOs: 3, Hypotheses: 2, Experiments: 1, Warnings: 1}, "3 SLOs, 2 hypotheses, 1 experiment; 0 errors, 1 warning"},
		{"singular", Summary{SLOs: 1, Hypotheses: 1, Experiments: 1, Errors: 1, Warnings: 1}, "1 SLO, 1 hypothesis, 1 experiment; 1 error, 1 warning"},
		{"zero", Summary{}, "0 SLOs, 0 hypotheses, 0 experiments; 0 errors, 0 warnings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	set := &Set{SLOs: []*SLO{{}, {}}, Hypotheses: []*Hypothesis{{}}}
	ds := Diagnostics{{Severity: LevelError}, {Severity: LevelWarning}, {Severity: LevelWarning}}
	want := Summary{SLOs: 2, Hypotheses: 1, Errors: 1, Warnings: 2}
	if got := Summarize(set, ds); got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if got := Summarize(nil, nil); got != (Summary{}) {
		t.Errorf("Summarize(nil, nil) = %+v", got)
	}
}
