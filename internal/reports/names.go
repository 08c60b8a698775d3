package reports

import (
	"context"
	"strconv"
	"time"
)

// Names lists the names a filter can take, for pickers: each list sorted,
// environments in promotion order.
type Names struct {
	Workspaces   []string `json:"workspaces"`
	Applications []string `json:"applications"`
	Environments []string `json:"environments"`
	Workloads    []string `json:"workloads"`
	Targets      []string `json:"targets"`
}

// maxNames bounds each list of Names: a picker of more is of no use.
const maxNames = 1000

// Names reads the distinct names of workspaces, applications, workloads and
// targets, and the environments in promotion order.
func (s *Service) Names(ctx context.Context) (Names, error) {
	var n Names
	var err error
	if n.Environments, err = s.Environments(ctx, nil); err != nil {
		return n, err
	}
	for _, l := range []struct {
		dst *[]string
		sql string
	}{
		{&n.Workspaces, `SELECT name FROM workspaces`},
		{&n.Applications, `SELECT DISTINCT name FROM applications`},
		{&n.Workloads, `SELECT DISTINCT name FROM workloads`},
		{&n.Targets, `SELECT DISTINCT name FROM targets`},
	} {
		rows, err := s.st.Read().Query(ctx, l.sql+` ORDER BY name LIMIT `+strconv.Itoa(maxNames))
		if err != nil {
			return n, err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return n, err
			}
			*l.dst = append(*l.dst, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// WorkloadRef names a workload.
type WorkloadRef struct {
	Workspace   string `json:"workspace"`
	Application string `json:"application"`
	Workload    string `json:"workload"`
}

// WorkloadRef returns the workload a target belongs to.
func (t TargetRef) WorkloadRef() WorkloadRef {
	return WorkloadRef{Workspace: t.Workspace, Application: t.Application, Workload: t.Workload}
}

// Repositories says where the commits of the filtered targets and
// workloads live: each target's manifests repository (its GitOps commits),
// each workload's source repository and each version's build commit.
type Repositories struct {
	Manifests map[TargetRef]string              `json:"-"`
	Source    map[WorkloadRef]string            `json:"-"`
	Builds    map[WorkloadRef]map[string]string `json:"-"` // version → build commit
}

// Repositories reads the repositories of the targets and workloads the
// filter names (its workspace, application, environment, workload and
// target).
func (s *Service) Repositories(ctx context.Context, f Filter) (Repositories, error) {
	r := Repositories{Manifests: map[TargetRef]string{}, Source: map[WorkloadRef]string{}, Builds: map[WorkloadRef]map[string]string{}}
	w := &where{}
	w.targetFilter(f)
	rows, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, e.repo, wl.source_repo
		FROM targets t`+targetJoins+` JOIN endpoints e ON e.id = t.endpoint_id WHERE `+w.sql(), w.args...)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var t TargetRef
		var repo, src string
		if err := rows.Scan(&t.Workspace, &t.Application, &t.Workload, &t.Environment, &t.Target, &repo, &src); err != nil {
			rows.Close()
			return r, err
		}
		r.Manifests[t] = repo
		if src != "" {
			r.Source[t.WorkloadRef()] = src
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	w = &where{}
	w.targetFilter(Filter{Workspace: f.Workspace, Application: f.Application, Workload: f.Workload})
	rows, err = s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, v.version, v.build_commit
		FROM workload_versions v JOIN workloads wl ON wl.id = v.workload_id
		JOIN applications app ON app.id = wl.application_id JOIN workspaces ws ON ws.id = app.workspace_id
		WHERE v.build_commit <> '' AND `+w.sql(), w.args...)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	for rows.Next() {
		var k WorkloadRef
		var version, commit string
		if err := rows.Scan(&k.Workspace, &k.Application, &k.Workload, &version, &commit); err != nil {
			return r, err
		}
		if r.Builds[k] == nil {
			r.Builds[k] = map[string]string{}
		}
		r.Builds[k][version] = commit
	}
	return r, rows.Err()
}

// Empty reports whether the store holds nothing to report on: no target
// and no reconciler.
func (s *Service) Empty(ctx context.Context) (bool, error) {
	var n int
	err := s.st.Read().QueryRow(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM targets LIMIT 1) t)
		+ (SELECT count(*) FROM (SELECT 1 FROM reconcilers LIMIT 1) r)`).Scan(&n)
	return n == 0, err
}

// Now is the Service's clock: reports of "how long" measure up to it.
func (s *Service) Now() time.Time { return s.now().UTC() }
