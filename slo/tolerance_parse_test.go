package slo

import (
	"math"
	"testing"
)

func TestParseTolerance(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Tolerance
		wantErr string
	}{
		{name: "less", in: "< 0.01", want: Tolerance{Op: OpLT, Value: 0.01}},
		{name: "less or equal", in: "<= 5", want: Tolerance{Op: OpLE, Value: 5}},
		{name: "greater", in: "> 1", want: Tolerance{Op: OpGT, Value: 1}},
		{name: "greater or equal", in: ">= 99.5", want: Tolerance{Op: OpGE, Value: 99.5}},
		{name: "equal", in: "== 1", want: Tolerance{Op: OpEQ, Value: 1}},
		{name: "not equal", in: "!= 0", want: Tolerance{Op: OpNE, Value: 0}},
		{name: "between", in: "between 0 and 0.5", want: Tolerance{Op: OpBetween, Value: 0, Value2: 0.5}},
		{name: "between equal bounds", in: "between 1 and 1", want: Tolerance{Op: OpBetween, Value: 1, Value2: 1}},
		{name: "between negative", in: "between -1 and 1e3", want: Tolerance{Op: OpBetween, Value: -1, Value2: 1000}},
		{name: "no space", in: "<0.01", want: Tolerance{Op: OpLT, Value: 0.01}},
		{name: "no space two chars", in: ">=0", want: Tolerance{Op: OpGE, Value: 0}},
		{name: "surrounding spaces", in: "  <   3  ", want: Tolerance{Op: OpLT, Value: 3}},
		{name: "negative", in: "> -0.5", want: Tolerance{Op: OpGT, Value: -0.5}},
		{name: "percent", in: ">= 50%", want: Tolerance{Op: OpGE, Value: 0.5}},
		{name: "between percent", in: "between 10% and 20 %", want: Tolerance{Op: OpBetween, Value: 0.1, Value2: 0.2}},
		{name: "capitalised between", in: "Between 1 and 2", want: Tolerance{Op: OpBetween, Value: 1, Value2: 2}},

		{name: "unknown operator", in: "<< 3", wantErr: `tolerance "<< 3": unknown operator "<<"; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "single equals", in: "= 3", wantErr: `tolerance "= 3": unknown operator "="; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "empty", in: "", wantErr: `tolerance "": empty; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "no operator", in: "0.5", wantErr: `tolerance "0.5": missing operator; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "word operator", in: "lt 3", wantErr: `tolerance "lt 3": missing operator; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "no number", in: "<", wantErr: `tolerance "<": missing number after "<"`},
		{name: "not a number", in: "< abc", wantErr: `tolerance "< abc": "abc" is not a number`},
		{name: "two numbers", in: "< 1 2", wantErr: `tolerance "< 1 2": "1 2" is not a number`},
		{name: "NaN", in: "< NaN", wantErr: `tolerance "< NaN": "NaN" is not a finite number`},
		{name: "Inf", in: ">= +Inf", wantErr: `tolerance ">= +Inf": "+Inf" is not a finite number`},
		{name: "between inverted", in: "between 5 and 1", wantErr: `tolerance "between 5 and 1": lower bound 5 is greater than upper bound 1`},
		{name: "between one bound", in: "between 1", wantErr: `tolerance "between 1": expected "between A and B"`},
		{name: "between no lower", in: "between  and 1", wantErr: `tolerance "between  and 1": expected "between A and B"`},
		{name: "between infinite", in: "between 0 and inf", wantErr: `tolerance "between 0 and inf": "inf" is not a finite number`},
		{name: "between garbage", in: "between a and 1", wantErr: `tolerance "between a and 1": "a" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTolerance(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseTolerance(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTolerance(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseTolerance(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestToleranceRoundTrip checks that String renders what ParseTolerance reads.
func TestToleranceRoundTrip(t *testing.T) {
	for _, in := range []string{"< 0.01", "<= 5", "> 1", ">= 99.5", "== 1", "!= 0", "between 0 and 0.5"} {
		tol, err := ParseTolerance(in)
		if err != nil {
			t.Fatal(err)
		}
		if tol.String() != in {
			t.Errorf("ParseTolerance(%q).String() = %q", in, tol.String())
		}
	}
}

func TestToleranceValidate(t *testing.T) {
	tests := []struct {
		name    string
		tol     Tolerance
		wantErr string
	}{
		{name: "valid", tol: Tolerance{Op: OpLT, Value: 1}},
		{name: "valid between", tol: Tolerance{Op: OpBetween, Value: 1, Value2: 2}},
		{name: "unknown op", tol: Tolerance{Op: "lt", Value: 1}, wantErr: `unknown operator "lt"; use one of <, <=, >, >=, ==, !=, "between A and B"`},
		{name: "NaN", tol: Tolerance{Op: OpLT, Value: math.NaN()}, wantErr: "bound NaN is not a finite number"},
		{name: "inverted", tol: Tolerance{Op: OpBetween, Value: 2, Value2: 1}, wantErr: "lower bound 2 is greater than upper bound 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tol.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Validate error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
