package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The endpoint series (migration 0039): each endpoint's hosts by commit and
// status, kept by time, so that time travel reads one snapshot per
// endpoint instead of probing the history of every reconciler that changed
// since the time.
//
// What a snapshot holds is what the history says, reconciler by
// reconciler, with the rules of time travel: a reconciler counts on its
// endpoint from when it was registered (a change reported before that
// counts from then) until it was retired; at a time before its current
// deployment's last change its state is its latest status change at or
// before that time, from that change on its current state. A snapshot at
// time t holds the groups from t until the next snapshot.
//
// Ingest keeps the series in the report's transaction when each change it
// writes is its reconciler's latest (the usual case: a snapshot appended
// per change time, or a few later snapshots adjusted when another writer's
// clock ran ahead). Everything else that moves a reconciler's past marks
// the endpoint dirty instead, and RebuildSeries recomputes its series from
// the history in the background; time travel reads the history for dirty
// endpoints meanwhile. A late report marks its endpoint from its own time
// on (the snapshots before it stay, and are read); a move to another
// endpoint or retention dropping history marks the whole series. A
// retirement, and a return from it, are changes like the others: the
// reconciler leaves the counts at its retirement, and comes back into
// them from then on.

// seriesLock is the class of the advisory locks that serialize writers of
// one endpoint's series on PostgreSQL.
const seriesLock = 7458

// SeriesGroup is a group of an endpoint's hosts at a time.
type SeriesGroup struct {
	Commit, Status string
	Hosts          int
}

// seriesKey is a group's (commit, status).
type seriesKey struct{ commit, status string }

// seriesValue is an endpoint's groups at a time (no zero counts).
type seriesValue map[seriesKey]int

// encode renders the groups as stored: a JSON array of [commit, status,
// hosts], sorted.
func (v seriesValue) encode() string {
	keys := slices.SortedFunc(maps.Keys(v), func(a, b seriesKey) int {
		return cmp.Or(cmp.Compare(a.commit, b.commit), cmp.Compare(a.status, b.status))
	})
	b := []byte{'['}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendJSONString(b, k.commit)
		b = append(b, ',')
		b = appendJSONString(b, k.status)
		b = append(strconv.AppendInt(append(b, ','), int64(v[k]), 10), ']')
	}
	return string(append(b, ']'))
}

// appendJSONString appends s as a JSON string: as it is between quotes
// when it is plain ASCII (commits and statuses are), else as
// encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// ParseSeriesGroups reads a snapshot's groups as stored.
func ParseSeriesGroups(s string) ([]SeriesGroup, error) {
	if gs, ok := parseEncodedGroups(s); ok {
		return gs, nil
	}
	var raw [][3]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("endpoint snapshot groups: %w", err)
	}
	out := make([]SeriesGroup, len(raw))
	for i, r := range raw {
		c, ok1 := r[0].(string)
		st, ok2 := r[1].(string)
		n, ok3 := r[2].(float64)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("endpoint snapshot groups: %q is not [commit, status, hosts]", s)
		}
		out[i] = SeriesGroup{Commit: c, Status: st, Hosts: int(n)}
	}
	return out, nil
}

// parseEncodedGroups reads groups in the form encode writes, a time
// travel page's worth of them at a time: without encoding/json's
// reflection. false when s is not in that form.
func parseEncodedGroups(s string) ([]SeriesGroup, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	rest := s[1 : len(s)-1]
	var out []SeriesGroup
	// str reads a JSON string at the start of rest (json.Marshal's escapes
	// are Go's too) and what follows it.
	str := func(rest string) (string, string, bool) {
		if len(rest) == 0 || rest[0] != '"' {
			return "", "", false
		}
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				v, err := strconv.Unquote(rest[:i+1])
				return v, rest[i+1:], err == nil
			}
		}
		return "", "", false
	}
	for len(rest) > 0 {
		if rest[0] != '[' {
			return nil, false
		}
		var g SeriesGroup
		var ok bool
		if g.Commit, rest, ok = str(rest[1:]); !ok || len(rest) == 0 || rest[0] != ',' {
			return nil, false
		}
		if g.Status, rest, ok = str(rest[1:]); !ok || len(rest) == 0 || rest[0] != ',' {
			return nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false
		}
		n, err := strconv.Atoi(rest[1:end])
		if err != nil {
			return nil, false
		}
		g.Hosts = n
		out = append(out, g)
		rest = rest[end+1:]
		if len(rest) > 0 {
			if rest[0] != ',' {
				return nil, false
			}
			rest = rest[1:]
		}
	}
	return out, true
}

func parseSeriesValue(s string) (seriesValue, error) {
	gs, err := ParseSeriesGroups(s)
	if err != nil {
		return nil, err
	}
	v := make(seriesValue, len(gs))
	for _, g := range gs {
		v[seriesKey{g.Commit, g.Status}] = g.Hosts
	}
	return v, nil
}

// HistoryChange is a status change ingest wrote to the history: one row.
type HistoryChange struct {
	ReconcilerID int64
	Commit       string
	Status       model.Status
	At           time.Time
}

// seriesEvent adds n hosts to a group from a time on.
type seriesEvent struct {
	at  time.Time
	key seriesKey
	n   int
}

// SeriesMarks are endpoints whose series is to be recomputed, each from a
// time on (the zero time: the whole series).
type SeriesMarks map[int64]time.Time

// Mark marks the series of an endpoint from a time on (zero: whole),
// keeping the earlier of two marks.
func (m SeriesMarks) Mark(endpoint int64, from time.Time) {
	if cur, ok := m[endpoint]; ok && (cur.IsZero() || !from.IsZero() && !from.Before(cur)) {
		return
	}
	m[endpoint] = from
}

// SeriesUpdate is what a transaction changes in the endpoint series: events
// to apply, by endpoint, and endpoints to mark dirty.
type SeriesUpdate struct {
	events map[int64][]seriesEvent
	dirty  SeriesMarks
}

// SeriesChanges is what moving reconcilers from before to after (as for
// CountDeltas; after holds CreatedAt), through the history rows written
// (changes, in the order written), changes in the endpoint series. late
// holds the endpoints of reconcilers given a change older than their
// latest (a late report), each from the change's time: those are marked.
// A reconciler retired stops counting at its retirement, and one restored
// counts again from the retirement it returns from, as events when its
// changes lie on the right side of that time, else by a mark from the
// earlier time; both endpoints of a reconciler moved are marked whole.
func SeriesChanges(before, after map[int64]ReconcilerFacts, changes []HistoryChange, late SeriesMarks) SeriesUpdate {
	u := SeriesUpdate{events: map[int64][]seriesEvent{}, dirty: maps.Clone(late)}
	if u.dirty == nil {
		u.dirty = SeriesMarks{}
	}
	var whole time.Time
	byReconciler := map[int64][]HistoryChange{}
	for _, c := range changes {
		byReconciler[c.ReconcilerID] = append(byReconciler[c.ReconcilerID], c)
	}
	for id, a := range after {
		b, existed := before[id]
		if existed && b.EndpointID != a.EndpointID {
			u.dirty.Mark(b.EndpointID, whole)
			u.dirty.Mark(a.EndpointID, whole)
			continue
		}
		restored, retired := existed && !b.Live && a.Live, existed && b.Live && !a.Live
		cs := byReconciler[id]
		if !a.Live && !retired {
			if len(cs) > 0 {
				u.dirty.Mark(a.EndpointID, whole)
			}
			continue
		}
		// In time order; rows of one time in the order written (their ids).
		slices.SortStableFunc(cs, func(x, y HistoryChange) int { return x.At.Compare(y.At) })
		stored := func(t time.Time) time.Time { // as stored, counted from its registration
			if t = t.UTC().Truncate(time.Microsecond); t.Before(a.CreatedAt) {
				t = a.CreatedAt
			}
			return t
		}
		var prev *seriesKey
		if existed && b.Status != "" {
			prev = &seriesKey{b.Commit, b.Status}
		}
		evs := u.events[a.EndpointID]
		if restored && prev != nil {
			// It counts again from its retirement on, in the state it was
			// retired in: so when it changed before the retirement and
			// changes after it, else from the earlier time on (unknown:
			// all).
			r, from := b.RetiredAt, b.RetiredAt
			if len(cs) > 0 && cs[0].At.Before(from) {
				from = cs[0].At
			}
			if r.IsZero() || b.Since.After(r) || !from.Equal(r) {
				u.dirty.Mark(a.EndpointID, from.UTC().Truncate(time.Microsecond))
				continue
			}
			evs = append(evs, seriesEvent{stored(r), *prev, 1})
		}
		for _, c := range cs {
			at := stored(c.At)
			if prev != nil {
				evs = append(evs, seriesEvent{at, *prev, -1})
			}
			k := seriesKey{c.Commit, string(c.Status)}
			evs = append(evs, seriesEvent{at, k, 1})
			prev = &k
		}
		// The changes must end where the reconciler is; when they do not
		// (a write this accounting does not know), recompute.
		if (prev == nil) != (a.Status == "") || (prev != nil && *prev != (seriesKey{a.Commit, a.Status})) {
			u.dirty.Mark(a.EndpointID, whole)
			continue
		}
		if retired && prev != nil {
			// It stops counting at its retirement, in the state it ends
			// in: so when it changed last before, else from then on.
			if r := a.RetiredAt; r.IsZero() || a.Since.After(r) {
				u.dirty.Mark(a.EndpointID, r.UTC().Truncate(time.Microsecond))
				continue
			}
			evs = append(evs, seriesEvent{stored(a.RetiredAt), *prev, -1})
		}
		if len(evs) > 0 {
			u.events[a.EndpointID] = evs
		}
	}
	return u
}

// AdvanceSeries applies u: it locks the endpoints' series (in id order),
// marks the dirty ones, and applies the events of the others (and of those
// marked from a time) to their snapshots: a snapshot at each event's time
// (from the one before it) and the events added to every later snapshot.
// An endpoint whose counts would go negative is marked whole rather than
// written.
func AdvanceSeries(ctx context.Context, q Querier, engine string, u SeriesUpdate) error {
	// The events of an endpoint marked from a time are applied too: its
	// snapshots before that time stay in use, and the later ones stay in
	// step with its reconcilers' current states, which the next
	// transactions' events start from.
	var apply []int64
	for ep := range u.events {
		if from, dirty := u.dirty[ep]; !dirty || !from.IsZero() {
			apply = append(apply, ep)
		}
	}
	slices.Sort(apply)
	eps := slices.Compact(slices.Sorted(slices.Values(slices.Concat(apply, slices.Collect(maps.Keys(u.dirty))))))
	if len(eps) == 0 {
		return nil
	}
	if err := lockSeries(ctx, q, engine, eps); err != nil {
		return err
	}
	from := make([]time.Time, len(apply))
	for i, ep := range apply {
		evs := u.events[ep]
		slices.SortStableFunc(evs, func(a, b seriesEvent) int { return a.at.Compare(b.at) })
		from[i] = evs[0].at
	}
	stored, err := readSnapshotsFrom(ctx, q, engine, apply, from)
	if err != nil {
		return err
	}
	var w snapshotColumns
	for _, ep := range apply {
		rows, ok := advance(stored[ep], u.events[ep])
		if !ok {
			u.dirty.Mark(ep, time.Time{})
			continue
		}
		for _, r := range rows {
			w.add(ep, r.at, r.groups)
		}
	}
	if err := writeSnapshots(ctx, q, engine, w); err != nil {
		return err
	}
	return markSeriesDirty(ctx, q, engine, u.dirty)
}

// snapshot is a stored snapshot of an endpoint's groups.
type snapshot struct {
	at     time.Time
	groups string
}

// endpointSnapshot is a snapshot with its endpoint, as read.
type endpointSnapshot struct {
	ep int64
	s  snapshot
}

// scanEndpointSnapshot scans (endpoint_id, at, groups).
func scanEndpointSnapshot(r Row) (endpointSnapshot, error) {
	var x endpointSnapshot
	err := r.Scan(&x.ep, &x.s.at, &x.s.groups)
	x.s.at = x.s.at.UTC()
	return x, err
}

// advance applies events (in time order) to an endpoint's stored snapshots
// from the last one at or before the first event on (in time order), and
// returns the snapshots to write; false when a count would go negative.
func advance(stored []snapshot, events []seriesEvent) ([]snapshot, bool) {
	times := make([]time.Time, 0, len(stored)+len(events))
	for _, s := range stored {
		if !s.at.Before(events[0].at) {
			times = append(times, s.at)
		}
	}
	for _, e := range events {
		times = append(times, e.at)
	}
	slices.SortFunc(times, time.Time.Compare)
	times = slices.CompactFunc(times, time.Time.Equal)
	var out []snapshot
	delta := seriesValue{}
	si, ei := 0, 0
	var before snapshot // the stored snapshot in force
	for _, t := range times {
		for si < len(stored) && !stored[si].at.After(t) {
			before = stored[si]
			si++
		}
		for ei < len(events) && !events[ei].at.After(t) {
			delta[events[ei].key] += events[ei].n
			ei++
		}
		v := seriesValue{}
		if before.groups != "" {
			var err error
			if v, err = parseSeriesValue(before.groups); err != nil {
				return nil, false
			}
		}
		for k, n := range delta {
			v[k] += n
			switch {
			case v[k] < 0:
				return nil, false
			case v[k] == 0:
				delete(v, k)
			}
		}
		g := v.encode()
		if !before.at.Equal(t) || before.groups != g {
			out = append(out, snapshot{t, g})
		}
	}
	return out, true
}

// readSnapshotsFrom reads, for each endpoint, its snapshots from the last
// one at or before its time in from on, in time order.
func readSnapshotsFrom(ctx context.Context, q Querier, engine string, eps []int64, from []time.Time) (map[int64][]snapshot, error) {
	out := map[int64][]snapshot{}
	const cond = `s.at >= COALESCE((SELECT max(b.at) FROM endpoint_snapshots b WHERE b.endpoint_id = s.endpoint_id AND b.at <= $2), $2)`
	keep := func(x endpointSnapshot) { out[x.ep] = append(out[x.ep], x.s) }
	if engine == "postgres" {
		if len(eps) == 0 {
			return out, nil
		}
		// Each endpoint's latest snapshot, one index probe each: usually
		// all there is to read (the changes are the latest). Where it is
		// after the time (another writer's clock ran ahead), the range.
		err := collectEach(ctx, q, `SELECT u.ep, s.at, s.groups FROM unnest($1::bigint[]) AS u(ep)
			CROSS JOIN LATERAL (SELECT s.at, s.groups FROM endpoint_snapshots s WHERE s.endpoint_id = u.ep ORDER BY s.at DESC LIMIT 1) s`,
			[]any{eps}, scanEndpointSnapshot, keep)
		if err != nil {
			return nil, fmt.Errorf("read endpoint snapshots: %w", err)
		}
		var later []int64
		var laterFrom []time.Time
		for i, ep := range eps {
			if ss := out[ep]; len(ss) > 0 && ss[0].at.After(from[i]) {
				later, laterFrom = append(later, ep), append(laterFrom, from[i])
				delete(out, ep)
			}
		}
		if len(later) == 0 {
			return out, nil
		}
		err = collectEach(ctx, q, `SELECT s.endpoint_id, s.at, s.groups FROM unnest($1::bigint[], $2::timestamptz[]) AS u(ep, t)
			JOIN endpoint_snapshots s ON s.endpoint_id = u.ep
				AND s.at >= COALESCE((SELECT max(b.at) FROM endpoint_snapshots b WHERE b.endpoint_id = u.ep AND b.at <= u.t), u.t)
			ORDER BY s.endpoint_id, s.at`, []any{later, laterFrom}, scanEndpointSnapshot, keep)
		if err != nil {
			return nil, fmt.Errorf("read endpoint snapshots: %w", err)
		}
		return out, nil
	}
	for i, ep := range eps {
		err := collectEach(ctx, q, `SELECT s.endpoint_id, s.at, s.groups FROM endpoint_snapshots s
			WHERE s.endpoint_id = $1 AND `+cond+` ORDER BY s.at`, []any{ep, from[i]}, scanEndpointSnapshot, keep)
		if err != nil {
			return nil, fmt.Errorf("read endpoint snapshots: %w", err)
		}
	}
	return out, nil
}

// snapshotColumns are snapshots to write, a column each.
type snapshotColumns struct {
	eps    []int64
	ats    []time.Time
	groups []string
}

func (c *snapshotColumns) add(ep int64, at time.Time, groups string) {
	c.eps, c.ats, c.groups = append(c.eps, ep), append(c.ats, at), append(c.groups, groups)
}

// writeSnapshots inserts or replaces snapshots.
func writeSnapshots(ctx context.Context, q Querier, engine string, w snapshotColumns) error {
	if len(w.eps) == 0 {
		return nil
	}
	const upsert = ` ON CONFLICT (endpoint_id, at) DO UPDATE SET groups = excluded.groups`
	if engine == "postgres" {
		if _, err := q.Exec(ctx, `INSERT INTO endpoint_snapshots (endpoint_id, at, groups)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[])`+upsert, w.eps, w.ats, w.groups); err != nil {
			return fmt.Errorf("write endpoint snapshots: %w", err)
		}
		return nil
	}
	for i := range w.eps {
		if _, err := q.Exec(ctx, `INSERT INTO endpoint_snapshots (endpoint_id, at, groups) VALUES ($1, $2, $3)`+upsert,
			w.eps[i], w.ats[i], w.groups[i]); err != nil {
			return fmt.Errorf("write endpoint snapshots: %w", err)
		}
	}
	return nil
}

// lockSeries takes, on PostgreSQL, the series lock of each endpoint, held
// until commit. Writers take it after the endpoint counts and
// before the hosts' locks (see LockHosts); RebuildSeries takes one alone.
func lockSeries(ctx context.Context, q Querier, engine string, eps []int64) error {
	if err := advisoryLocks(ctx, q, engine, seriesLock, eps); err != nil {
		return fmt.Errorf("lock endpoint series: %w", err)
	}
	return nil
}

// markSeriesDirty marks endpoints' series to be recomputed (each mark
// counted, see RebuildSeries), in endpoint order; an endpoint already
// marked keeps the earlier time.
func markSeriesDirty(ctx context.Context, q Querier, engine string, marks SeriesMarks) error {
	if len(marks) == 0 {
		return nil
	}
	eps := slices.Sorted(maps.Keys(marks))
	since := make([]*time.Time, len(eps)) // nil: the whole series
	for i, ep := range eps {
		if t := marks[ep]; !t.IsZero() {
			since[i] = &t
		}
	}
	const upsert = ` ON CONFLICT (endpoint_id) DO UPDATE SET gen = series_dirty.gen + 1,
		since = CASE WHEN series_dirty.since IS NULL OR excluded.since IS NULL THEN NULL
			WHEN excluded.since < series_dirty.since THEN excluded.since ELSE series_dirty.since END`
	if engine == "postgres" {
		if _, err := q.Exec(ctx, `INSERT INTO series_dirty (endpoint_id, since) SELECT * FROM unnest($1::bigint[], $2::timestamptz[])`+upsert, eps, since); err != nil {
			return fmt.Errorf("mark endpoint series: %w", err)
		}
		return nil
	}
	for i, ep := range eps {
		if _, err := q.Exec(ctx, `INSERT INTO series_dirty (endpoint_id, since) VALUES ($1, $2)`+upsert, ep, since[i]); err != nil {
			return fmt.Errorf("mark endpoint series: %w", err)
		}
	}
	return nil
}

// MarkAllSeriesDirty marks every endpoint's whole series to be
// recomputed: what the history says of the past changed (retention
// dropped some of it).
func MarkAllSeriesDirty(ctx context.Context, q Querier) error {
	if _, err := q.Exec(ctx, `INSERT INTO series_dirty (endpoint_id) SELECT id FROM endpoints WHERE TRUE
		ON CONFLICT (endpoint_id) DO UPDATE SET gen = series_dirty.gen + 1, since = NULL`); err != nil {
		return fmt.Errorf("mark endpoint series: %w", err)
	}
	return nil
}

// SeriesStaleSQL is the condition that the snapshot in force at a time (at,
// an SQL expression) of an endpoint (ep, an SQL expression; empty: of any
// endpoint) is not to be read: its series is marked from then or before.
func SeriesStaleSQL(ep, at string) string {
	where := ""
	if ep != "" {
		where = `d.endpoint_id = ` + ep + ` AND `
	}
	return `EXISTS (SELECT 1 FROM series_dirty d WHERE ` + where + `(d.since IS NULL OR d.since <= ` + at + `))`
}

// DirtySeries counts the endpoints whose series waits for RebuildSeries.
func (s *Store) DirtySeries(ctx context.Context) (int, error) {
	var n int
	err := s.d.QueryRow(ctx, `SELECT count(*) FROM series_dirty`).Scan(&n)
	return n, err
}

// RebuildSeries recomputes from the history the series of up to limit
// endpoints marked dirty (from the mark's time on, or whole), each in its
// own transaction under its series lock, and forgets a mark only when no
// writer marked the endpoint again meanwhile. It returns how many it
// rebuilt.
func (s *Store) RebuildSeries(ctx context.Context, limit int) (int, error) {
	type mark struct {
		ep, gen int64
		since   *time.Time
	}
	marks, err := Collect(ctx, s.d, `SELECT endpoint_id, gen, since FROM series_dirty ORDER BY endpoint_id LIMIT `+strconv.Itoa(limit), nil,
		func(r Row) (mark, error) {
			var m mark
			err := r.Scan(&m.ep, &m.gen, &m.since)
			return m, err
		})
	if err != nil {
		return 0, fmt.Errorf("read dirty endpoint series: %w", err)
	}
	engine := s.Engine()
	for i, m := range marks {
		err := s.Tx(ctx, func(q Querier) error {
			if err := lockSeries(ctx, q, engine, []int64{m.ep}); err != nil {
				return err
			}
			// The endpoint's reconcilers (from a mark on, those not retired
			// by then) by the indexes of the live and the retired ones, on
			// PostgreSQL as an array computed first: asked as one
			// condition, or as IN (...) with the history from a time,
			// PostgreSQL read every reconciler (96 ms an endpoint at 2,000
			// hosts, against 4.7; 28 against 8 ms from a mark at 10,000).
			retired, args := `retired_at IS NOT NULL`, []any{m.ep}
			var from time.Time
			if m.since != nil {
				from = m.since.UTC()
				retired, args = `retired_at > $2`, append(args, from)
			}
			ids := `SELECT id FROM reconcilers WHERE endpoint_id = $1 AND retired_at IS NULL
				UNION ALL SELECT id FROM reconcilers WHERE endpoint_id = $1 AND ` + retired
			reconcilers := `r.id IN (` + ids + `)`
			if engine == "postgres" {
				reconcilers = `r.id = ANY(ARRAY(` + ids + `))`
			}
			series, err := recomputeSeries(ctx, q, engine, reconcilers, from, args...)
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `DELETE FROM endpoint_snapshots WHERE endpoint_id = $1 AND at >= $2`, m.ep, from); err != nil {
				return fmt.Errorf("rebuild endpoint series: %w", err)
			}
			if ss := series[m.ep]; !from.IsZero() && (len(ss) == 0 || ss[0].at.After(from)) {
				// No host at from: the snapshot before it says otherwise.
				series[m.ep] = append([]snapshot{{from, "[]"}}, ss...)
			}
			var w snapshotColumns
			for _, sn := range series[m.ep] {
				w.add(m.ep, sn.at, sn.groups)
			}
			if err := writeSnapshots(ctx, q, engine, w); err != nil {
				return err
			}
			_, err = q.Exec(ctx, `DELETE FROM series_dirty WHERE endpoint_id = $1 AND gen = $2`, m.ep, m.gen)
			return err
		})
		if err != nil {
			return i, fmt.Errorf("rebuild the series of endpoint %d: %w", m.ep, err)
		}
	}
	waiting, err := s.DirtySeries(ctx)
	if err != nil {
		return len(marks), fmt.Errorf("count dirty endpoint series: %w", err)
	}
	s.seriesWaiting.Store(int64(waiting))
	return len(marks), nil
}

// SeriesWaiting is how many endpoints' series waited for their rebuild
// (time travel reads their history meanwhile) after the last
// RebuildSeries, which the hub runs every SeriesRebuildInterval; false
// before the first.
func (s *Store) SeriesWaiting() (int, bool) {
	n := s.seriesWaiting.Load()
	return int(n), n >= 0
}

// seriesIntervalsSQL lists, for the reconcilers that cond (on r) selects,
// each interval of time in which one held a state on its endpoint:
// endpoint, commit, status, start, the next state's start (NULL: none) and
// the reconciler's retirement (NULL: none). Its history rows before its
// current deployment's last change, then its current state from that
// change on; a row reported before the reconciler was registered starts
// when it was. cond binds its arguments as $1, $2, … and is used more
// than once. With from (a bound argument), only the history rows from
// that time on and each reconciler's latest before it: the intervals that
// end after it, and some that end before.
func seriesIntervalsSQL(engine, cond, from string) string {
	history := func(join string) string {
		return `SELECT r.id AS rid, r.endpoint_id AS ep, r.created_at AS created, r.retired_at AS retired,
			d.commit_sha AS sha, h.status AS status, h.changed_at AS at, h.id AS seq, 0 AS cur
		FROM reconcilers r JOIN deployment_history h ON h.reconciler_id = r.id` + join + ` JOIN deployments d ON d.id = h.deployment_id
			LEFT JOIN deployments c ON c.id = r.current_deployment_id
		WHERE (` + cond + `) AND (c.id IS NULL OR h.changed_at < c.last_changed)`
	}
	rows := history("")
	if from != "" {
		latest := func(cols string) string {
			return `SELECT ` + cols + ` FROM deployment_history p WHERE p.reconciler_id = r.id AND p.changed_at < ` + from + `
			AND (c.id IS NULL OR p.changed_at < c.last_changed) ORDER BY p.changed_at DESC, p.id DESC LIMIT 1`
		}
		before := `JOIN deployment_history h ON h.id = (` + latest("p.id") + `)`
		if engine == "postgres" { // the history has no key by id alone
			before = `CROSS JOIN LATERAL (` + latest("p.id, p.status, p.changed_at, p.deployment_id") + `) h`
		}
		rows = history(` AND h.changed_at >= `+from) + `
		UNION ALL
		SELECT r.id, r.endpoint_id, r.created_at, r.retired_at, d.commit_sha, h.status, h.changed_at, h.id, 0
		FROM reconcilers r LEFT JOIN deployments c ON c.id = r.current_deployment_id
			` + before + ` JOIN deployments d ON d.id = h.deployment_id
		WHERE (` + cond + `)`
	}
	return `WITH x AS (` + rows + `
		UNION ALL
		SELECT r.id, r.endpoint_id, r.created_at, r.retired_at, c.commit_sha, c.status, c.last_changed, 0, 1
		FROM reconcilers r JOIN deployments c ON c.id = r.current_deployment_id
		WHERE (` + cond + `))
	SELECT ep, sha, status, start, LEAD(start) OVER (PARTITION BY rid ORDER BY at, cur, seq), retired
	FROM (SELECT x.*, CASE WHEN at > created THEN at ELSE created END AS start FROM x) y`
}

// recomputeSeries computes from the history the series of the endpoints
// of the reconcilers that cond selects (see seriesIntervalsSQL), by
// endpoint, without repeated values: each snapshot differs from the one
// before it, and none is empty before the first that is not. With a from
// time (bound as cond's last argument), from then on: the first snapshot
// is at from when hosts were there then.
func recomputeSeries(ctx context.Context, q Querier, engine, cond string, from time.Time, args ...any) (map[int64][]snapshot, error) {
	type interval struct {
		ep          int64
		key         seriesKey
		start       time.Time
		next, until *time.Time
	}
	events := map[int64][]seriesEvent{}
	fromArg := ""
	if !from.IsZero() {
		fromArg = "$" + strconv.Itoa(len(args))
	}
	err := collectEach(ctx, q, seriesIntervalsSQL(engine, cond, fromArg), args, func(r Row) (interval, error) {
		var i interval
		err := r.Scan(&i.ep, &i.key.commit, &i.key.status, &i.start, &i.next, &i.until)
		return i, err
	}, func(i interval) {
		end := i.next
		if i.until != nil && (end == nil || i.until.Before(*end)) {
			end = i.until
		}
		if !from.IsZero() && i.start.Before(from) {
			i.start = from // in force at from
		}
		if end != nil && !end.After(i.start) {
			return
		}
		events[i.ep] = append(events[i.ep], seriesEvent{i.start.UTC(), i.key, 1})
		if end != nil {
			events[i.ep] = append(events[i.ep], seriesEvent{end.UTC(), i.key, -1})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("recompute endpoint series: %w", err)
	}
	out := make(map[int64][]snapshot, len(events))
	for ep, evs := range events {
		slices.SortStableFunc(evs, func(a, b seriesEvent) int { return a.at.Compare(b.at) })
		v := seriesValue{}
		var series []snapshot
		for i, e := range evs {
			v[e.key] += e.n
			if v[e.key] == 0 {
				delete(v, e.key)
			}
			if i+1 < len(evs) && evs[i+1].at.Equal(e.at) {
				continue
			}
			series = appendDistinct(series, snapshot{e.at, v.encode()})
		}
		out[ep] = series
	}
	return out, nil
}

// appendDistinct appends s unless it holds what the last snapshot holds
// (or, first, no group).
func appendDistinct(series []snapshot, s snapshot) []snapshot {
	if len(series) == 0 && s.groups == "[]" || len(series) > 0 && series[len(series)-1].groups == s.groups {
		return series
	}
	return append(series, s)
}

// checkSeries compares the stored series of every endpoint not marked
// dirty with its recomputation from the history (of one marked from a
// time, what time travel still reads: the snapshots before it), a slice of
// endpoint ids at a time, and lists up to limit differences: "-" stored,
// "+" recomputed, each as "endpoint at groups".
func checkSeries(ctx context.Context, q Querier, limit int) ([]Difference, error) {
	var lo, hi int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(min(id), 0), COALESCE(max(id), -1) FROM endpoints`).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("check endpoint_snapshots: %w", err)
	}
	const slice = 256
	var out []Difference
	clean := `NOT EXISTS (SELECT 1 FROM series_dirty x WHERE x.endpoint_id = r.endpoint_id AND x.since IS NULL) AND r.endpoint_id >= $1 AND r.endpoint_id < $2`
	for from := lo; from <= hi && len(out) < limit; from += slice {
		fresh, err := recomputeSeries(ctx, q, "", clean, time.Time{}, from, from+slice)
		if err != nil {
			return nil, err
		}
		marked := map[int64]time.Time{} // the endpoints marked from a time
		err = collectEach(ctx, q, `SELECT endpoint_id, since FROM series_dirty WHERE since IS NOT NULL AND endpoint_id >= $1 AND endpoint_id < $2`,
			[]any{from, from + slice}, func(r Row) (endpointSnapshot, error) {
				var x endpointSnapshot
				err := r.Scan(&x.ep, &x.s.at)
				return x, err
			}, func(x endpointSnapshot) { marked[x.ep] = x.s.at.UTC() })
		if err != nil {
			return nil, fmt.Errorf("check endpoint_snapshots: %w", err)
		}
		stored := map[int64][]snapshot{}
		err = collectEach(ctx, q, `SELECT s.endpoint_id, s.at, s.groups FROM endpoint_snapshots s
			WHERE NOT EXISTS (SELECT 1 FROM series_dirty x WHERE x.endpoint_id = s.endpoint_id AND x.since IS NULL) AND s.endpoint_id >= $1 AND s.endpoint_id < $2
			ORDER BY s.endpoint_id, s.at`, []any{from, from + slice}, scanEndpointSnapshot, func(x endpointSnapshot) {
			// Stored snapshots may repeat a value: compare what they mean.
			if v, err := parseSeriesValue(x.s.groups); err == nil {
				x.s.groups = v.encode()
			}
			stored[x.ep] = appendDistinct(stored[x.ep], x.s)
		})
		if err != nil {
			return nil, fmt.Errorf("check endpoint_snapshots: %w", err)
		}
		eps := map[int64]bool{}
		for ep := range stored {
			eps[ep] = true
		}
		for ep := range fresh {
			eps[ep] = true
		}
		for _, ep := range slices.Sorted(maps.Keys(eps)) {
			if since, ok := marked[ep]; ok {
				before := func(s snapshot) bool { return !s.at.Before(since) }
				stored[ep], fresh[ep] = slices.DeleteFunc(stored[ep], before), slices.DeleteFunc(fresh[ep], before)
			}
			for _, side := range []struct {
				name string
				a, b []snapshot
			}{{"-", stored[ep], fresh[ep]}, {"+", fresh[ep], stored[ep]}} {
				for _, s := range side.a {
					if !slices.ContainsFunc(side.b, func(o snapshot) bool { return o.at.Equal(s.at) && o.groups == s.groups }) && len(out) < limit {
						out = append(out, Difference{Table: "endpoint_snapshots", Side: side.name,
							Row: fmt.Sprint(ep, " ", s.at.Format(time.RFC3339Nano), " ", s.groups)})
					}
				}
			}
		}
	}
	return out, nil
}
