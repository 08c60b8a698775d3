package reports

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/tidemark-dev/tidemark/internal/store"
)

// ErrNotFound is returned for a host (or other named thing) the store does
// not hold.
var ErrNotFound = errors.New("not found")

// HostDetail is one host and its reconcilers.
type HostDetail struct {
	Name        string             `json:"name"`
	Type        string             `json:"type"`
	Labels      map[string]string  `json:"labels,omitempty"`
	FirstSeen   time.Time          `json:"firstSeen"`
	Reconcilers []ReconcilerDetail `json:"reconcilers"`
}

// ReconcilerDetail is a reconciler of a host: what it applies (its
// manifests endpoint and the targets on it) and its current deployment.
type ReconcilerDetail struct {
	Name         string      `json:"name"`
	Type         string      `json:"type"`
	StorageType  string      `json:"storageType"`
	Repo         string      `json:"repo"`
	Branch       string      `json:"branch,omitempty"`
	Path         string      `json:"path,omitempty"`
	Targets      []TargetRef `json:"targets"`
	Commit       string      `json:"commit,omitempty"`
	Status       string      `json:"status"` // "" before its first report
	Message      string      `json:"message,omitempty"`
	StatusSince  *time.Time  `json:"statusSince,omitempty"`
	LastReportAt time.Time   `json:"lastReportAt"`
	RetiredAt    *time.Time  `json:"retiredAt,omitempty"`
}

// Host reads a host and its reconcilers, retired ones included.
func (s *Service) Host(ctx context.Context, name string) (HostDetail, error) {
	h := HostDetail{Name: name, Reconcilers: []ReconcilerDetail{}}
	var labels string
	err := s.st.Read().QueryRow(ctx, `SELECT type, CAST(labels AS TEXT), created_at FROM hosts WHERE name = $1`, name).Scan(&h.Type, &labels, &h.FirstSeen)
	if errors.Is(err, store.ErrNoRows) {
		return h, ErrNotFound
	}
	if err != nil {
		return h, err
	}
	h.FirstSeen = h.FirstSeen.UTC()
	if labels != "" && labels != "{}" {
		_ = json.Unmarshal([]byte(labels), &h.Labels) // stored by the hub as a JSON object
	}
	rows, err := s.st.Read().Query(ctx, `SELECT r.id, r.name, r.type, e.storage_type, e.repo, e.branch, e.path,
			COALESCE(d.commit_sha, ''), COALESCE(d.status, ''), COALESCE(d.message, ''), d.status_since, r.last_report_at, r.retired_at
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id JOIN endpoints e ON e.id = r.endpoint_id
		LEFT JOIN deployments d ON d.id = r.current_deployment_id
		WHERE h.name = $1 ORDER BY r.name`, name)
	if err != nil {
		return h, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var r ReconcilerDetail
		if err := rows.Scan(&id, &r.Name, &r.Type, &r.StorageType, &r.Repo, &r.Branch, &r.Path,
			&r.Commit, &r.Status, &r.Message, &r.StatusSince, &r.LastReportAt, &r.RetiredAt); err != nil {
			rows.Close()
			return h, err
		}
		r.LastReportAt = r.LastReportAt.UTC()
		r.StatusSince, r.RetiredAt = utcPtr(r.StatusSince), utcPtr(r.RetiredAt)
		r.Targets = []TargetRef{}
		ids = append(ids, id)
		h.Reconcilers = append(h.Reconcilers, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return h, err
	}
	if len(ids) == 0 {
		return h, nil
	}
	var args []any
	rows, err = s.st.Read().Query(ctx, `SELECT r.id, ws.name, app.name, wl.name, env.name, t.name
		FROM reconcilers r JOIN targets t ON t.endpoint_id = r.endpoint_id`+targetJoins+`
		WHERE r.id IN (`+bindIDs(&args, ids)+`) ORDER BY ws.name, app.name, wl.name, t.name`, args...)
	if err != nil {
		return h, err
	}
	defer rows.Close()
	index := map[int64]int{}
	for i, id := range ids {
		index[id] = i
	}
	for rows.Next() {
		var id int64
		var t TargetRef
		if err := rows.Scan(&id, &t.Workspace, &t.Application, &t.Workload, &t.Environment, &t.Target); err != nil {
			return h, err
		}
		r := &h.Reconcilers[index[id]]
		r.Targets = append(r.Targets, t)
	}
	if err := rows.Err(); err != nil {
		return h, err
	}
	// Each reconciler's targets by environment in promotion order (the
	// order ranks each name on its own, so a few names order as all do).
	var envs []string
	for _, r := range h.Reconcilers {
		for _, t := range r.Targets {
			envs = append(envs, t.Environment)
		}
	}
	ordered := OrderEnvironments(envs, s.promotion)
	for _, r := range h.Reconcilers {
		slices.SortStableFunc(r.Targets, func(a, b TargetRef) int {
			return cmp.Compare(slices.Index(ordered, a.Environment), slices.Index(ordered, b.Environment))
		})
	}
	return h, nil
}

// HostEvent is one change of a host's deployments: a reconciler reached a
// status (or a new message) for a commit.
type HostEvent struct {
	Reconciler string    `json:"reconciler"`
	Commit     string    `json:"commit"`
	Status     string    `json:"status"`
	Message    string    `json:"message,omitempty"`
	At         time.Time `json:"at"`
	// Versions are what the commit resolves to for the targets the
	// reconciler applies ("" unknown), in target order.
	Versions []TargetVersion `json:"versions"`
}

// TargetVersion is the version a commit resolves to for a target.
type TargetVersion struct {
	TargetRef
	Version      string `json:"version"`
	VersionKnown bool   `json:"versionKnown"`
}

// HostHistory lists a host's deployment changes, newest first, paged by
// key. Since and Until bound the time of the change; Status filters it.
func (s *Service) HostHistory(ctx context.Context, host string, f Filter, p Page) ([]HostEvent, string, error) {
	after, err := decodeEventKey(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	w := &where{}
	w.add("h.name = ?", host)
	if f.Status != "" {
		w.add("dh.status = ?", f.Status)
	}
	if !f.Since.IsZero() {
		w.add("dh.changed_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("dh.changed_at <= ?", f.Until.UTC())
	}
	if after != nil {
		w.add("(dh.changed_at < ? OR (dh.changed_at = ? AND dh.id < ?))", after.At, after.At, after.ID)
	}
	limit := p.limit()
	rows, err := s.st.Read().Query(ctx, `SELECT dh.id, r.endpoint_id, r.name, d.commit_sha, dh.status, dh.message, dh.changed_at
		FROM deployment_history dh JOIN deployments d ON d.id = dh.deployment_id
		JOIN reconcilers r ON r.id = d.reconciler_id JOIN hosts h ON h.id = r.host_id
		WHERE `+w.sql()+` ORDER BY dh.changed_at DESC, dh.id DESC LIMIT `+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, "", err
	}
	var out []HostEvent
	var keys []eventKey
	var endpoints []int64
	for rows.Next() {
		var e HostEvent
		var k eventKey
		var ep int64
		if err := rows.Scan(&k.ID, &ep, &e.Reconciler, &e.Commit, &e.Status, &e.Message, &e.At); err != nil {
			rows.Close()
			return nil, "", err
		}
		e.At = e.At.UTC()
		k.At = e.At
		e.Versions = []TargetVersion{}
		out, keys, endpoints = append(out, e), append(keys, k), append(endpoints, ep)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out, endpoints = out[:limit], endpoints[:limit]
		next = keys[limit-1].encode()
	}
	if len(out) == 0 {
		return []HostEvent{}, "", nil
	}
	// The versions of the page's commits, for the targets of their
	// endpoints.
	seen := map[int64]bool{}
	var eps []int64
	for _, ep := range endpoints {
		if !seen[ep] {
			seen[ep] = true
			eps = append(eps, ep)
		}
	}
	shas := map[string]bool{}
	var shaList []any
	for _, e := range out {
		if !shas[e.Commit] {
			shas[e.Commit] = true
			shaList = append(shaList, e.Commit)
		}
	}
	var args []any
	in := bindIDs(&args, eps)
	shaIn := ""
	for i, sha := range shaList {
		args = append(args, sha)
		if i > 0 {
			shaIn += ", "
		}
		shaIn += "$" + strconv.Itoa(len(args))
	}
	vrows, err := s.st.Read().Query(ctx, `SELECT t.endpoint_id, ws.name, app.name, wl.name, env.name, t.name, res.sha, COALESCE(v.version, ''),
			CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END
		FROM targets t`+targetJoins+`
		JOIN resolutions res ON res.target_id = t.id
		LEFT JOIN workload_versions v ON v.id = res.version_id
		WHERE t.endpoint_id IN (`+in+`) AND res.sha IN (`+shaIn+`) ORDER BY t.name`, args...)
	if err != nil {
		return nil, "", err
	}
	defer vrows.Close()
	type epSHA struct {
		ep  int64
		sha string
	}
	versions := map[epSHA][]TargetVersion{}
	for vrows.Next() {
		var k epSHA
		var tv TargetVersion
		var known int
		if err := vrows.Scan(&k.ep, &tv.Workspace, &tv.Application, &tv.Workload, &tv.Environment, &tv.Target, &k.sha, &tv.Version, &known); err != nil {
			return nil, "", err
		}
		tv.VersionKnown = known == 1
		versions[k] = append(versions[k], tv)
	}
	if err := vrows.Err(); err != nil {
		return nil, "", err
	}
	for i := range out {
		if v := versions[epSHA{endpoints[i], out[i].Commit}]; v != nil {
			out[i].Versions = v
		}
	}
	return out, next, nil
}

type eventKey struct {
	At time.Time `json:"a"`
	ID int64     `json:"i"`
}

func (k eventKey) encode() string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeEventKey(cursor string) (*eventKey, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, ErrBadCursor
	}
	var k eventKey
	if err := json.Unmarshal(b, &k); err != nil || k.ID == 0 {
		return nil, ErrBadCursor
	}
	return &k, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
