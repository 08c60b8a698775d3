package reports

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// GateError is a gate query that names no target, several, or nothing to
// wait for. Param names the query parameter to fix.
type GateError struct {
	NotFound bool // no target matches (as opposed to several)
	Param    string
	Problem  string
}

func (e *GateError) Error() string { return e.Param + ": " + e.Problem }

// Gate answers "has version V (or GitOps commit C) reached success on
// every host of target T yet?". Each live host of the target counts by its
// latest report of a commit that resolves to the assignment of V (or C);
// a host with none has not reported. Before the hub can place commit C, the
// hosts reporting C itself count.
func (s *Service) Gate(ctx context.Context, q GateQuery) (Gate, error) {
	var g Gate
	if (q.Version == "") == (q.Commit == "") {
		return g, &GateError{Param: "version", Problem: "give either version or commit"}
	}
	if (q.Target == "") == (q.Endpoint == "") {
		return g, &GateError{Param: "target", Problem: "give either target or endpoint"}
	}
	var commit string
	if q.Commit != "" {
		c, err := model.NormalizeRevision(q.Commit)
		if err != nil {
			return g, &GateError{Param: "commit", Problem: err.Error()}
		}
		commit = c
	}
	t, err := s.gateTarget(ctx, q)
	if err != nil {
		return g, err
	}
	g.TargetRef = t.ref

	// The assignment waited for, with the commits that count: those
	// resolving to it (a few), in one statement; or the commit itself
	// before the hub can place it. Each host's deployments of them are
	// then read by key: a reconciler on a branch has a deployment per
	// commit it ever applied.
	var assignment string
	var args []any
	switch {
	case q.Version != "":
		assignment = `SELECT a.id, COALESCE(a.commit_sha, '') AS label FROM assignments a JOIN workload_versions v ON v.id = a.version_id
			WHERE a.target_id = $1 AND v.version = $2 ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1`
		args = []any{t.id, q.Version}
		g.Version = q.Version
	default:
		assignment = `SELECT a.id, v.version AS label FROM assignments a JOIN workload_versions v ON v.id = a.version_id
			WHERE a.target_id = $1 AND (a.commit_sha = $2 OR substr(a.commit_sha, 1, length($2)) = $2 OR substr($2, 1, length(a.commit_sha)) = a.commit_sha)
			ORDER BY a.assigned_at DESC LIMIT 1`
		args = []any{t.id, commit}
		g.Commit = commit
	}
	var assignmentID int64
	var shas []string
	err = collectEach(ctx, s.st.Read(), `SELECT x.id, x.label, res.sha FROM (`+assignment+`) x
		LEFT JOIN resolutions res ON res.target_id = $1 AND res.assignment_id = x.id`, args, func(r store.Row) error {
		var label string
		var sha *string
		if err := r.Scan(&assignmentID, &label, &sha); err != nil {
			return err
		}
		if q.Version != "" {
			g.Commit = label
		} else {
			g.Version = label
		}
		if sha != nil {
			shas = append(shas, *sha)
		}
		return nil
	})
	if err != nil {
		return g, err
	}
	switch {
	case assignmentID == 0 && q.Version != "":
		return g, &GateError{NotFound: true, Param: "version", Problem: fmt.Sprintf("version %s was never assigned to target %s in %s", q.Version, t.ref.Target, t.ref.Environment)}
	case assignmentID == 0:
		shas = []string{commit} // not placed yet: count reports of the commit itself
	}
	a := store.Args{t.endpointID}
	counted := "FALSE"
	if len(shas) > 0 {
		counted = store.In(s.st.Engine(), &a, "d.commit_sha", shas)
	}
	rows, err := s.st.Read().Query(ctx, `SELECT r.id, h.name, r.name, COALESCE(r.commit_sha, ''), d.commit_sha, d.status, d.message, d.status_since, d.last_changed
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id
		LEFT JOIN deployments d ON d.reconciler_id = r.id AND `+counted+`
		WHERE r.endpoint_id = $1 AND r.retired_at IS NULL
		ORDER BY h.name, r.name`, a...)
	if err != nil {
		return g, err
	}
	defer rows.Close()
	type seen struct {
		host       GateHost
		reconciler int64
		last       time.Time
	}
	var order []string
	hosts := map[string]*seen{}
	for rows.Next() {
		var h GateHost
		var id int64
		var c, status, msg *string
		var since, last *time.Time
		if err := rows.Scan(&id, &h.Host, &h.Reconciler, &h.Commit, &c, &status, &msg, &since, &last); err != nil {
			return g, err
		}
		k := h.Host + "\x00" + h.Reconciler
		cur, ok := hosts[k]
		if !ok {
			h.State = "not_reported"
			cur = &seen{host: h, reconciler: id}
			hosts[k] = cur
			order = append(order, k)
		}
		if status != nil && (cur.host.State == "not_reported" || last.After(cur.last)) {
			cur.host.Commit, cur.host.Version, cur.host.Message, cur.host.Since, cur.last = *c, g.Version, *msg, since.UTC(), *last
			cur.host.State = map[string]string{"success": "succeeded", "failure": "failed", "in_progress": "in_progress"}[*status]
		}
	}
	if err := rows.Err(); err != nil {
		return g, err
	}
	// Until it reports the version, a host shows what it runs now: its
	// current deployment and the version that resolves to on the target
	// (read only while some host is pending).
	pending := map[int64]*GateHost{}
	for _, h := range hosts {
		if h.host.State == "not_reported" && h.host.Commit != "" {
			pending[h.reconciler] = &h.host
		}
	}
	if len(pending) > 0 {
		b := store.Args{t.id}
		err := collectEach(ctx, s.st.Read(), `SELECT r.id, COALESCE(v.version, ''), d.message, d.status_since
			FROM reconcilers r JOIN deployments d ON d.id = r.current_deployment_id
			LEFT JOIN resolutions res ON res.target_id = $1 AND res.sha = r.commit_sha
			LEFT JOIN workload_versions v ON v.id = res.version_id
			WHERE `+store.In(s.st.Engine(), &b, "r.id", slices.Sorted(maps.Keys(pending))), b, func(r store.Row) error {
			var id int64
			var h GateHost
			if err := r.Scan(&id, &h.Version, &h.Message, &h.Since); err != nil {
				return err
			}
			p := pending[id]
			p.Version, p.Message, p.Since = h.Version, h.Message, h.Since.UTC()
			return nil
		})
		if err != nil {
			return g, err
		}
	}
	g.Hosts = make([]GateHost, 0, len(order))
	for _, k := range order {
		h := hosts[k].host
		g.Hosts = append(g.Hosts, h)
		switch h.State {
		case "succeeded":
			g.Succeeded++
		case "failed":
			g.Failed++
		case "in_progress":
			g.InProgress++
		default:
			g.NotReported++
		}
	}
	g.Total = len(g.Hosts)
	g.Done = g.Total > 0 && g.Succeeded == g.Total
	g.Failing = g.Failed > 0
	return g, nil
}

type gateTarget struct {
	id, endpointID int64
	ref            TargetRef
}

// gateTarget finds the one target a gate query names.
func (s *Service) gateTarget(ctx context.Context, q GateQuery) (gateTarget, error) {
	w := &where{}
	w.targetFilter(Filter{Workspace: q.Workspace, Application: q.Application, Environment: q.Environment, Workload: q.Workload, Target: q.Target})
	if q.Endpoint != "" {
		ep, err := model.ParseEndpoint("", q.Endpoint)
		if err != nil {
			return gateTarget{}, &GateError{Param: "endpoint", Problem: err.Error()}
		}
		w.add("e.key = ?", ep.Key())
	}
	rows, err := s.st.Read().Query(ctx, `SELECT t.id, t.endpoint_id, ws.name, app.name, wl.name, env.name, t.name
		FROM targets t`+targetJoins+` JOIN endpoints e ON e.id = t.endpoint_id
		WHERE `+w.sql()+` ORDER BY env.name, ws.name, app.name, wl.name, t.name LIMIT 20`, w.args...)
	if err != nil {
		return gateTarget{}, err
	}
	defer rows.Close()
	var found []gateTarget
	for rows.Next() {
		var t gateTarget
		if err := rows.Scan(&t.id, &t.endpointID, &t.ref.Workspace, &t.ref.Application, &t.ref.Workload, &t.ref.Environment, &t.ref.Target); err != nil {
			return gateTarget{}, err
		}
		found = append(found, t)
	}
	if err := rows.Err(); err != nil {
		return gateTarget{}, err
	}
	switch len(found) {
	case 0:
		name := "target"
		if q.Target == "" {
			name = "endpoint"
		}
		return gateTarget{}, &GateError{NotFound: true, Param: name, Problem: "no deployment target matches " + describeGate(q)}
	case 1:
		return found[0], nil
	}
	var names []string
	for _, t := range found {
		names = append(names, fmt.Sprintf("%s/%s/%s in %s", t.ref.Workspace, t.ref.Application, t.ref.Workload, t.ref.Environment))
	}
	return gateTarget{}, &GateError{Param: "workload", Problem: fmt.Sprintf("%d targets match %s (%s): add workload, application, workspace or environment",
		len(found), describeGate(q), strings.Join(names, "; "))}
}

func describeGate(q GateQuery) string {
	var parts []string
	for _, kv := range [][2]string{{"target", q.Target}, {"endpoint", q.Endpoint}, {"workload", q.Workload}, {"application", q.Application}, {"workspace", q.Workspace}, {"environment", q.Environment}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, " ")
}
