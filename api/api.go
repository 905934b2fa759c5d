// Package api holds the JSON wire types of slogate's HTTP API for gates and
// runs: what `slogate serve` sends (package web) and what its clients read
// (package client), declared once so that the two cannot drift apart. The
// names and shapes are fixed by DESIGN.md; a change here is a change of the
// API.
//
// It imports nothing of slogate: a program that talks to slogate can use
// these types without the server's dependencies.
package api

import (
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// GateStatus is the gate's verdict on whether an experiment may run.
type GateStatus string

// Gate statuses.
const (
	GateOpen    GateStatus = "open"
	GateClosed  GateStatus = "closed"
	GateUnknown GateStatus = "unknown"
)

// HTTPStatus is the status code the gate endpoint answers a status with:
// 200 open, 409 closed, 503 unknown; 0 for anything else, so that a client
// can tell an answer whose code and body disagree.
func (s GateStatus) HTTPStatus() int {
	switch s {
	case GateOpen:
		return http.StatusOK
	case GateClosed:
		return http.StatusConflict
	case GateUnknown:
		return http.StatusServiceUnavailable
	}
	return 0
}

// ReasonKind says what a Reason is about.
type ReasonKind string

// Reason kinds.
const (
	KindHypothesis ReasonKind = "hypothesis"  // a hypothesis's verdict, or it is not evaluated
	KindProbe      ReasonKind = "probe"       // a probe of a hypothesis that does not pass
	KindSLO        ReasonKind = "slo"         // an SLO's gate policy, or it is not evaluated
	KindStale      ReasonKind = "stale"       // no fresh data for a hypothesis or an SLO
	KindLowTraffic ReasonKind = "low-traffic" // an SLO counted fewer events than gate.minEvents
	KindRunActive  ReasonKind = "run-active"  // a run of the experiment is active, or runs cannot be read or stored
)

// Reason is one machine-readable cause of a gate answer: something keeping
// the gate from being open or, for an open gate, worth knowing (an unknown
// the experiment tolerates with onUnknown: open).
type Reason struct {
	Kind    ReasonKind `json:"kind"`
	Name    string     `json:"name"` // the hypothesis, probe (hypothesis/probe), SLO or run
	Message string     `json:"message"`
}

// GateAnswer is the answer of GET /api/v1/experiments/{name}/gate, with
// the status code of Status.HTTPStatus.
type GateAnswer struct {
	Experiment  string     `json:"experiment"`
	Status      GateStatus `json:"status"`
	Reasons     []Reason   `json:"reasons"`
	EvaluatedAt time.Time  `json:"evaluatedAt"`
}

// Open reports whether the experiment may run.
func (g *GateAnswer) Open() bool { return g.Status == GateOpen }

// ErrorBody is the body of every error answer of the API: {"error": "..."}.
// A refused run start (409) also carries the gate answer that refused it.
type ErrorBody struct {
	Error string      `json:"error"`
	Gate  *GateAnswer `json:"gate,omitempty"`
}

// Num is a float that marshals NaN and ±Inf as JSON null, because JSON has
// no such numbers and an absent value must not read as 0.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON implements json.Unmarshaler: null is NaN, as MarshalJSON
// wrote it, not 0.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Valid reports whether n is a finite number.
func (n Num) Valid() bool { f := float64(n); return !math.IsNaN(f) && !math.IsInf(f, 0) }
