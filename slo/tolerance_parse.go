package slo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

const toleranceHelp = `use one of <, <=, >, >=, ==, !=, "between A and B"`

// ParseTolerance parses the string form of a tolerance:
//
//	< 0.01   <= 5   > 1   >= 99.5   == 1   != 0   between 0 and 0.5
//
// Spaces between the operator and the number are optional ("<0.01"). A
// number may end in "%" to mean hundredths (">= 50%" is ">= 0.5"), because
// budgets and error ratios are ratios but people think of them in percent.
// NaN and infinite bounds are rejected (a comparison with them is always
// false or always true, which is never what was meant), and so is a
// between whose lower bound is above its upper bound.
//
// The loader also accepts a map form, {op: "<", value: 0.01}, and for
// between {op: between, value: 0, value2: 0.5}: the same fields as
// Tolerance, checked by Validate.
func ParseTolerance(s string) (Tolerance, error) {
	t, err := parseTolerance(strings.TrimSpace(s))
	if err != nil {
		return Tolerance{}, fmt.Errorf("tolerance %q: %w", s, err)
	}
	return t, nil
}

func parseTolerance(s string) (Tolerance, error) {
	if s == "" {
		return Tolerance{}, fmt.Errorf("empty; %s", toleranceHelp)
	}
	if rest, ok := cutWord(s, "between"); ok {
		return parseBetween(rest)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("<>=!", r) })
	if i < 0 {
		i = len(s)
	}
	opText, rest := s[:i], strings.TrimSpace(s[i:])
	if opText == "" {
		return Tolerance{}, fmt.Errorf("missing operator; %s", toleranceHelp)
	}
	op := Op(opText)
	switch op {
	case OpLT, OpLE, OpGT, OpGE, OpEQ, OpNE:
	default:
		return Tolerance{}, fmt.Errorf("unknown operator %q; %s", opText, toleranceHelp)
	}
	if rest == "" {
		return Tolerance{}, fmt.Errorf("missing number after %q", opText)
	}
	v, err := parseBound(rest)
	if err != nil {
		return Tolerance{}, err
	}
	return Tolerance{Op: op, Value: v}, nil
}

func parseBetween(s string) (Tolerance, error) {
	const want = `expected "between A and B"`
	// The first "and" splits: numbers never contain it.
	lo, hi, ok := strings.Cut(s, " and ")
	if !ok {
		return Tolerance{}, fmt.Errorf("%s", want)
	}
	lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
	if lo == "" || hi == "" {
		return Tolerance{}, fmt.Errorf("%s", want)
	}
	a, err := parseBound(lo)
	if err != nil {
		return Tolerance{}, err
	}
	b, err := parseBound(hi)
	if err != nil {
		return Tolerance{}, err
	}
	t := Tolerance{Op: OpBetween, Value: a, Value2: b}
	return t, t.Validate()
}

// cutWord cuts a leading keyword followed by a space, case-insensitively.
func cutWord(s, word string) (string, bool) {
	if len(s) <= len(word) || !strings.EqualFold(s[:len(word)], word) {
		return "", false
	}
	if s[len(word)] != ' ' && s[len(word)] != '\t' {
		return "", false
	}
	return " " + strings.TrimSpace(s[len(word):]), true
}

func parseBound(s string) (float64, error) {
	text, scale := s, 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		text, scale = strings.TrimSpace(t), 100
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v / scale, nil
}

// Validate checks a tolerance built from its fields (the map form of the
// definition files): a known operator, finite bounds, and lower <= upper
// for between.
func (t Tolerance) Validate() error {
	switch t.Op {
	case OpLT, OpLE, OpGT, OpGE, OpEQ, OpNE, OpBetween:
	default:
		return fmt.Errorf("unknown operator %q; %s", string(t.Op), toleranceHelp)
	}
	for _, v := range []float64{t.Value, t.Value2} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bound %v is not a finite number", v)
		}
	}
	if t.Op == OpBetween && t.Value > t.Value2 {
		return fmt.Errorf("lower bound %s is greater than upper bound %s",
			strconv.FormatFloat(t.Value, 'g', -1, 64), strconv.FormatFloat(t.Value2, 'g', -1, 64))
	}
	return nil
}
