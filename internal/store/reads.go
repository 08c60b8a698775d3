package store

import (
	"context"
	"time"
)

// HostTarget is what one live reconciler on a host deploys for one target
// whose endpoint it applies: its latest commit and status, resolved to a
// version by the correlation rules.
type HostTarget struct {
	Host, Reconciler                              string
	Workspace, Application, Workload, Environment string
	Target                                        string
	Commit                                        string
	Status                                        string
	Message                                       string
	StatusSince                                   time.Time
	Version                                       string // "" when unknown
}

// HostTargets lists every (live reconciler, target) pair, ordered by host,
// reconciler and target.
//
// Deprecated: use reports.Service.HostState; this stays until the
// controller tests move to it.
func HostTargets(ctx context.Context, q Querier) ([]HostTarget, error) {
	rows, err := q.Query(ctx, `SELECT h.name, r.name, ws.name, app.name, wl.name, env.name, t.name,
			d.commit_sha, d.status, d.message, d.status_since, COALESCE(v.version, '')
		FROM reconcilers r
		JOIN hosts h ON h.id = r.host_id
		JOIN deployments d ON d.id = r.current_deployment_id
		JOIN targets t ON t.endpoint_id = r.endpoint_id
		JOIN workloads wl ON wl.id = t.workload_id
		JOIN applications app ON app.id = wl.application_id
		JOIN workspaces ws ON ws.id = app.workspace_id
		JOIN environments env ON env.id = t.environment_id
		LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = d.commit_sha
		LEFT JOIN assignments a ON a.id = res.assignment_id
		LEFT JOIN workload_versions v ON v.id = a.version_id
		WHERE r.retired_at IS NULL
		ORDER BY h.name, r.name, env.name, t.name, wl.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HostTarget
	for rows.Next() {
		var h HostTarget
		if err := rows.Scan(&h.Host, &h.Reconciler, &h.Workspace, &h.Application, &h.Workload, &h.Environment, &h.Target,
			&h.Commit, &h.Status, &h.Message, &h.StatusSince, &h.Version); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
