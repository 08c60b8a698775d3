package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Replica is a read-only copy of the primary database that the engine's
// own replication keeps current (a PostgreSQL streaming replica).
type Replica interface {
	Querier
	// Name identifies the replica in health reports and metrics: host,
	// port and database, never credentials.
	Name() string
	// ReplayStatus reports how far the replica has replayed the primary's
	// log. It fails when the server is not replaying one (a promoted
	// replica, or a primary given by mistake).
	ReplayStatus(ctx context.Context) (ReplayStatus, error)
	// Unavailable reports whether err, from a query on the replica, means
	// the replica could not answer it (down, restarting, or cancelling
	// queries that conflict with replay), so that the read may go to the
	// primary instead.
	Unavailable(err error) bool
	Close() error
}

// ReplayStatus is where a replica stands in the primary's log.
type ReplayStatus struct {
	// Position is the log position replayed, comparable with
	// LogPositioner.LogPosition.
	Position int64
	// LastReplayAge is how long ago the last transaction the replica
	// replayed committed on the primary; Replayed is false when it has
	// replayed none since it started.
	LastReplayAge time.Duration
	Replayed      bool
}

// LogPositioner is implemented by drivers whose database can have
// replicas: it tells the primary's current position in its log.
type LogPositioner interface {
	LogPosition(ctx context.Context) (int64, error)
}

// ReplicaStatus is what the store last measured of a replica.
type ReplicaStatus struct {
	Name string
	// Healthy replicas serve reads: the last check reached it and its lag
	// was within the bound.
	Healthy bool
	// Lag is how far behind the primary its data may be: an upper bound,
	// within the check interval. LagKnown is false when it could not be
	// measured.
	Lag      time.Duration
	LagKnown bool
	// Error says why it is not healthy.
	Error     string
	CheckedAt time.Time
	// Reads counts the reads it served.
	Reads uint64
}

// Defaults of the replica options.
const (
	DefaultMaxReplicaLag        = 30 * time.Second
	DefaultReplicaCheckInterval = 2 * time.Second
)

// Option configures a Store.
type Option func(*options)

type options struct {
	replicas      []Replica
	maxLag        time.Duration
	checkInterval time.Duration
}

// WithReplicas makes Read serve reads from the replicas, round-robin, while
// they are healthy. The store closes them.
func WithReplicas(rs ...Replica) Option {
	return func(o *options) { o.replicas = append(o.replicas, rs...) }
}

// WithMaxReplicaLag sets how far behind the primary a replica may be and
// still serve reads (DefaultMaxReplicaLag when not set).
func WithMaxReplicaLag(d time.Duration) Option { return func(o *options) { o.maxLag = d } }

// WithReplicaCheckInterval sets how often replicas' health and lag are
// measured (DefaultReplicaCheckInterval when not set).
func WithReplicaCheckInterval(d time.Duration) Option {
	return func(o *options) { o.checkInterval = d }
}

// replicaSet routes reads to healthy replicas and keeps their status.
type replicaSet struct {
	primary  Driver
	position LogPositioner
	members  []*member
	maxLag   time.Duration
	interval time.Duration
	next     atomic.Uint64
	// fallbacks counts reads sent to the primary for want of a healthy
	// replica.
	fallbacks atomic.Uint64

	// samples of the primary's log position, oldest first: the lag of a
	// replica is at most the age of the newest sample it has replayed.
	samples []positionSample

	stop context.CancelFunc
	done chan struct{}
}

type positionSample struct {
	at       time.Time
	position int64
}

type member struct {
	r       Replica
	healthy atomic.Bool
	reads   atomic.Uint64
	mu      sync.Mutex
	status  ReplicaStatus
}

func newReplicaSet(ctx context.Context, d Driver, o options) (*replicaSet, error) {
	pos, ok := d.(LogPositioner)
	if !ok {
		return nil, fmt.Errorf("the %s engine cannot read from replicas: give read replicas of a PostgreSQL database", d.Name())
	}
	rs := &replicaSet{primary: d, position: pos, maxLag: o.maxLag, interval: o.checkInterval, done: make(chan struct{})}
	if rs.maxLag <= 0 {
		rs.maxLag = DefaultMaxReplicaLag
	}
	if rs.interval <= 0 {
		rs.interval = DefaultReplicaCheckInterval
	}
	for _, r := range o.replicas {
		m := &member{r: r}
		m.status.Name = r.Name()
		rs.members = append(rs.members, m)
	}
	// One check before the first read, so that reads start on the
	// replicas that are fit for them.
	rs.check(ctx)
	monitorCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs.stop = cancel
	go rs.monitor(monitorCtx)
	return rs, nil
}

func (rs *replicaSet) monitor(ctx context.Context) {
	defer close(rs.done)
	t := time.NewTicker(rs.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rs.check(ctx)
		}
	}
}

func (rs *replicaSet) close() error {
	rs.stop()
	<-rs.done
	var errs []error
	for _, m := range rs.members {
		errs = append(errs, m.r.Close())
	}
	return errors.Join(errs...)
}

// check measures every replica's lag against the primary's log position.
func (rs *replicaSet) check(ctx context.Context) {
	// A check's queries wait up to the interval, but at least a second: a
	// replica or primary busy for a few tens of milliseconds is not down
	// (with a check every 50 ms, a 50 ms bound took a replica out of the
	// rotation under load), and at most 2 s.
	timeout := min(max(rs.interval, time.Second), 2*time.Second)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	primaryPos, perr := rs.position.LogPosition(pctx)
	cancel()
	now := time.Now()
	if perr == nil {
		rs.samples = append(rs.samples, positionSample{at: now, position: primaryPos})
		// Samples older than the lag bound (and a few checks) are of no
		// use: a replica further behind is unhealthy anyway.
		keep := now.Add(-rs.maxLag - 3*rs.interval)
		for len(rs.samples) > 1 && rs.samples[0].at.Before(keep) {
			rs.samples = rs.samples[1:]
		}
	}
	var wg sync.WaitGroup
	for _, m := range rs.members {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := m.r.ReplayStatus(rctx)
			s := ReplicaStatus{Name: m.r.Name(), CheckedAt: now}
			switch {
			case err != nil:
				s.Error = err.Error()
			default:
				s.Lag, s.LagKnown = rs.lag(st, primaryPos, perr == nil, now)
				switch {
				case !s.LagKnown:
					s.Error = "lag unknown: the replica has replayed nothing the hub has seen the primary write"
				case s.Lag > rs.maxLag:
					s.Error = fmt.Sprintf("lag %s exceeds the bound %s", s.Lag.Round(time.Millisecond), rs.maxLag)
				default:
					s.Healthy = true
				}
			}
			m.mu.Lock()
			m.status = s
			m.mu.Unlock()
			m.healthy.Store(s.Healthy)
		})
	}
	wg.Wait()
}

// lag bounds how far behind the primary a replica's data is. A replica
// that has replayed the primary's current position has no lag. Else its
// data misses only transactions that committed after both the last one it
// replayed and the newest sample of the primary's position it has reached,
// so the smaller of those two ages bounds the lag, whether the primary is
// busy or idle.
func (rs *replicaSet) lag(st ReplayStatus, primaryPos int64, havePrimary bool, now time.Time) (time.Duration, bool) {
	if havePrimary && st.Position >= primaryPos {
		return 0, true
	}
	lag, known := time.Duration(0), false
	if st.Replayed {
		lag, known = max(st.LastReplayAge, 0), true
	}
	for i := len(rs.samples) - 1; i >= 0; i-- {
		if s := rs.samples[i]; s.position <= st.Position {
			if age := now.Sub(s.at); !known || age < lag {
				lag, known = age, true
			}
			break
		}
	}
	return lag, known
}

// pick returns the next healthy replica, round-robin, or nil.
func (rs *replicaSet) pick() *member {
	n := uint64(len(rs.members))
	start := rs.next.Add(1)
	for i := range n {
		if m := rs.members[(start+i)%n]; m.healthy.Load() {
			return m
		}
	}
	return nil
}

// markDown takes a replica out of rotation until its next good check.
func (m *member) markDown(err error) {
	m.healthy.Store(false)
	m.mu.Lock()
	m.status.Healthy = false
	m.status.Error = "read failed: " + err.Error()
	m.mu.Unlock()
}

func (rs *replicaSet) statuses() []ReplicaStatus {
	out := make([]ReplicaStatus, len(rs.members))
	for i, m := range rs.members {
		m.mu.Lock()
		out[i] = m.status
		m.mu.Unlock()
		out[i].Reads = m.reads.Load()
	}
	return out
}

// replicaQuerier reads from one replica and, when it cannot answer, from
// the primary. Exec always runs on the primary: replicas refuse writes.
type replicaQuerier struct {
	m       *member
	primary Querier
}

func (q replicaQuerier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return q.primary.Exec(ctx, sql, args...)
}

// failedOver reports whether a read that failed with err on the replica
// should run again on the primary, taking the replica out of rotation.
func (q replicaQuerier) failedOver(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || !q.m.r.Unavailable(err) {
		return false
	}
	q.m.markDown(err)
	return true
}

func (q replicaQuerier) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	q.m.reads.Add(1)
	rows, err := q.m.r.Query(ctx, sql, args...)
	if q.failedOver(ctx, err) {
		return q.primary.Query(ctx, sql, args...)
	}
	if err != nil {
		return nil, err
	}
	return &replicaRows{Rows: rows, q: q, ctx: ctx, sql: sql, args: args}, nil
}

// replicaRows are a replica's rows that move to the primary when the
// replica fails before the first row: a failure shows at the first Next
// rather than at Query when the connection had the statement prepared.
type replicaRows struct {
	Rows
	q       replicaQuerier
	ctx     context.Context
	sql     string
	args    []any
	started bool
}

func (r *replicaRows) Next() bool {
	if r.Rows.Next() {
		r.started = true
		return true
	}
	if r.started {
		return false
	}
	r.started = true
	if !r.q.failedOver(r.ctx, r.Rows.Err()) {
		return false
	}
	r.Rows.Close()
	rows, err := r.q.primary.Query(r.ctx, r.sql, r.args...)
	if err != nil {
		r.Rows = failedRows{err}
		return false
	}
	r.Rows = rows
	return rows.Next()
}

// failedRows are the rows of a query that failed.
type failedRows struct{ err error }

func (failedRows) Next() bool        { return false }
func (failedRows) Scan(...any) error { return errors.New("no row") }
func (r failedRows) Err() error      { return r.err }
func (failedRows) Close()            {}

func (q replicaQuerier) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return replicaRow{q: q, ctx: ctx, sql: sql, args: args}
}

// replicaRow runs its query when scanned, so that a replica's failure can
// send it to the primary.
type replicaRow struct {
	q    replicaQuerier
	ctx  context.Context
	sql  string
	args []any
}

func (r replicaRow) Scan(dest ...any) error {
	r.q.m.reads.Add(1)
	err := r.q.m.r.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	if !errors.Is(err, ErrNoRows) && r.q.failedOver(r.ctx, err) {
		return r.q.primary.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return err
}
