package reports

import (
	"context"
	"time"
)

// SetSearchWalkFactor sets how searchHosts chooses between reading every
// match and walking the hosts in name order, and returns a function that
// restores it: 0 always walks (from chunks of one host), a huge factor
// never does.
func SetSearchWalkFactor(f int64) (restore func()) {
	old, oldChunk := searchWalkFactor, searchFirstChunk
	searchWalkFactor, searchFirstChunk = f, 1
	return func() { searchWalkFactor, searchFirstChunk = old, oldChunk }
}

// StatesAfterDrop reads the states at the time of reconcilers ids through
// retryDropped: first with a reader that listed the history's partitions
// before drop ran, then, if that failed, with a fresh one. It returns the
// first attempt's error and what the retry gave.
func StatesAfterDrop(ctx context.Context, s *Service, ids []int64, at time.Time, drop func() error) (first error, states int, err error) {
	stale := s.newPastReader()
	if _, err := stale.historyAt(ctx, "r.id", "$1", at); err != nil { // lists the partitions
		return nil, 0, err
	}
	if err := drop(); err != nil {
		return nil, 0, err
	}
	calls := 0
	states, _, err = retryDropped(s, func() (int, string, error) {
		calls++
		p := stale
		if calls > 1 {
			p = s.newPastReader()
		}
		st, err := s.statesAt(ctx, p, ids, at, false)
		if calls == 1 {
			first = err
		}
		return len(st), "", err
	})
	return first, states, err
}
