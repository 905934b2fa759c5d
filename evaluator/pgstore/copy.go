package pgstore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/slogate/slogate/evaluator/store"
)

// RunSource is a store runs are copied from: the embedded store.
type RunSource interface {
	ListRuns(f store.ListFilter) ([]*store.Run, error)
}

// CopyResult counts what CopyRuns did.
type CopyResult struct {
	Copied, Skipped int // skipped: already in the database
}

// CopyRuns copies every run of from, with its timeline, into s, oldest
// first, each in one transaction with the same ID: a run already in s is
// left alone, so that copying again (after an interruption, or to pick up
// runs made since) copies only what is missing. An active run whose
// experiment already has another active run in s is refused with
// store.ErrRunActive, naming both: finish or abort one first.
func CopyRuns(from RunSource, s *Store) (CopyResult, error) {
	var res CopyResult
	runs, err := from.ListRuns(store.ListFilter{Timeline: true})
	if err != nil {
		return res, fmt.Errorf("read the runs to copy: %w", err)
	}
	slices.Reverse(runs) // oldest first: an interrupted copy has a prefix of history
	for _, r := range runs {
		err := s.CreateRun(r)
		switch {
		case err == nil:
			res.Copied++
		case errors.Is(err, store.ErrExists):
			res.Skipped++
		default:
			return res, fmt.Errorf("copy run %s of %s (%s): %w", r.ID, r.Experiment, r.State, err)
		}
	}
	return res, nil
}
