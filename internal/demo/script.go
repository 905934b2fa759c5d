package demo

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/slogate/slogate/client"
)

// Script is the demo's scripted chaos: it asks the gate through the real
// API, starts a run of Experiment, and alternates a chaos that the system
// absorbs (the run passes) with one that breaks checkout (the hypothesis
// fails and slogate aborts the run).
type Script struct {
	Client     *client.Client
	Sim        *Simulator
	Logger     *zap.Logger
	Experiment string
	// Pause is the time between rounds.
	Pause time.Duration
	// ChaosFor is how long a harmless chaos lasts before it is finished.
	ChaosFor time.Duration
}

// Run plays rounds until ctx ends.
func (s *Script) Run(ctx context.Context) error {
	log := s.Logger.With(zap.String("component", "demo-chaos"), zap.String("experiment", s.Experiment))
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if !sleep(10 * time.Second) {
		return nil
	}
	for round := 1; ; round++ {
		breaking := round%2 == 1
		if !s.waitGate(ctx, log) {
			return nil
		}
		run, _, err := s.Client.StartRun(ctx, s.Experiment)
		if err != nil {
			if errors.Is(err, client.ErrGateClosed) {
				log.Info("run refused by the gate; trying again later", zap.Error(err))
				if !sleep(s.Pause) {
					return nil
				}
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("cannot start a run", zap.Error(err))
			if !sleep(s.Pause) {
				return nil
			}
			continue
		}
		if breaking {
			log.Info("chaos: killing a checkout pod badly; 30% of checkout requests fail", zap.String("run", run.ID))
			s.Sim.Inject("checkout", 0.3)
		} else {
			log.Info("chaos: killing a checkout pod; traffic moves to the others", zap.String("run", run.ID))
			s.Sim.Slowdown("checkout", 0.001)
		}
		end := s.follow(ctx, log, run, breaking)
		s.Sim.Inject("checkout", 0)
		s.Sim.Slowdown("checkout", 0)
		log.Info("round over", zap.Int("round", round), zap.String("run", run.ID), zap.String("state", string(end)))
		if !sleep(s.Pause) {
			return nil
		}
	}
}

func (s *Script) waitGate(ctx context.Context, log *zap.Logger) bool {
	for {
		ans, err := s.Client.Gate(ctx, s.Experiment)
		if err == nil && ans.Open() {
			return true
		}
		if err == nil {
			log.Info("waiting for the gate", zap.String("status", string(ans.Status)), zap.Int("reasons", len(ans.Reasons)))
		}
		t := time.NewTimer(10 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// follow waits for the run to end; a harmless chaos is finished after
// ChaosFor, a breaking one is left for slogate to abort.
func (s *Script) follow(ctx context.Context, log *zap.Logger, run *client.Run, breaking bool) client.State {
	finishAt := time.Now().Add(s.ChaosFor)
	deadline := time.Now().Add(5 * time.Minute)
	state := run.State
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if !breaking && state == client.StateRunning && time.Now().After(finishAt) {
			if r, err := s.Client.FinishRun(ctx, run.ID); err == nil {
				state = r.State
				log.Info("chaos finished; slogate checks recovery", zap.String("run", run.ID))
			}
		}
		r, err := s.Client.WaitRun(ctx, run.ID, state, 5*time.Second)
		if err != nil {
			continue
		}
		if r.State != state {
			log.Info("run changed state", zap.String("run", run.ID), zap.String("state", string(r.State)), zap.String("reason", r.Reason))
		}
		state = r.State
		if state.Terminal() {
			return state
		}
	}
	if !state.Terminal() {
		_, _ = s.Client.AbortRun(context.Background(), run.ID, "demo script gave up waiting")
	}
	return state
}
