package slo

import (
	"math"
	"strconv"
)

// Op is a comparison operator of a tolerance.
type Op string

const (
	OpLT      Op = "<"
	OpLE      Op = "<="
	OpGT      Op = ">"
	OpGE      Op = ">="
	OpEQ      Op = "=="
	OpNE      Op = "!="
	OpBetween Op = "between" // Value <= x <= Value2
)

// Tolerance is a parsed condition on a measured value.
type Tolerance struct {
	Op     Op
	Value  float64
	Value2 float64 // upper bound of between
}

// Holds reports whether v satisfies the tolerance. NaN never holds; the
// caller decides what NaN means (it is "no data", not a miss).
func (t Tolerance) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch t.Op {
	case OpLT:
		return v < t.Value
	case OpLE:
		return v <= t.Value
	case OpGT:
		return v > t.Value
	case OpGE:
		return v >= t.Value
	case OpEQ:
		return v == t.Value
	case OpNE:
		return v != t.Value
	case OpBetween:
		return v >= t.Value && v <= t.Value2
	}
	return false
}

// String renders the tolerance in the language it is written in.
func (t Tolerance) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if t.Op == OpBetween {
		return "between " + f(t.Value) + " and " + f(t.Value2)
	}
	return string(t.Op) + " " + f(t.Value)
}
