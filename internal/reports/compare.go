package reports

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Comparison sets two environments side by side, workload by workload.
type Comparison struct {
	From  string          `json:"from"`
	To    string          `json:"to"`
	Items []ComparisonRow `json:"items"`
}

// ComparisonRow is one workload in both environments.
type ComparisonRow struct {
	WorkloadRef
	// SourceRepo is the workload's source repository ("" unknown).
	SourceRepo string         `json:"sourceRepo,omitempty"`
	From       ComparisonSide `json:"fromSide"`
	To         ComparisonSide `json:"toSide"`
	// Differs is true when the environments schedule or deploy different
	// versions.
	Differs bool `json:"differs"`
}

// ComparisonSide is a workload in one environment: its targets, the
// versions scheduled there and what its hosts deploy.
type ComparisonSide struct {
	Targets   []string          `json:"targets"`
	Scheduled []ScheduledCommit `json:"scheduled"`
	Deployed  []DeployedCommit  `json:"deployed"`
}

// ScheduledCommit is a target's scheduled version and its commits.
type ScheduledCommit struct {
	Target      string    `json:"target"`
	Version     string    `json:"version"`
	Commit      string    `json:"commit,omitempty"`
	BuildCommit string    `json:"buildCommit,omitempty"`
	AssignedAt  time.Time `json:"assignedAt"`
	// ManifestsRepo is the target's GitOps repository.
	ManifestsRepo string `json:"manifestsRepo"`
}

// DeployedCommit counts the hosts of a target that run one GitOps commit.
type DeployedCommit struct {
	Target        string `json:"target"`
	Commit        string `json:"commit"`
	Version       string `json:"version"` // "" unknown
	VersionKnown  bool   `json:"versionKnown"`
	BuildCommit   string `json:"buildCommit,omitempty"`
	ManifestsRepo string `json:"manifestsRepo"`
	Hosts         int    `json:"hosts"`
	Succeeded     int    `json:"succeeded"`
}

// NotReported says whether these are the target's hosts that have not
// reported yet: they run no commit, so they deploy no version.
func (d DeployedCommit) NotReported() bool { return d.Commit == "" }

// ErrCompareEnvironments is returned when Compare is not given two
// different environments.
var ErrCompareEnvironments = errors.New("from, to: name two different environments to compare")

// Compare sets environments from and to side by side for every workload
// that has a target in either (narrowed by the filter's workspace,
// application, workload and target): the versions scheduled and the GitOps
// commits deployed on each side, with host counts. Workloads that differ
// come first.
func (s *Service) Compare(ctx context.Context, f Filter, from, to string, p Page) (Comparison, string, error) {
	c := Comparison{From: from, To: to, Items: []ComparisonRow{}}
	if from == "" || to == "" || from == to {
		return c, "", ErrCompareEnvironments
	}
	rows := map[WorkloadRef]*ComparisonRow{}
	side := func(ref TargetRef, src string) *ComparisonSide {
		k := ref.WorkloadRef()
		r := rows[k]
		if r == nil {
			r = &ComparisonRow{WorkloadRef: k, SourceRepo: src,
				From: ComparisonSide{Targets: []string{}, Scheduled: []ScheduledCommit{}, Deployed: []DeployedCommit{}},
				To:   ComparisonSide{Targets: []string{}, Scheduled: []ScheduledCommit{}, Deployed: []DeployedCommit{}}}
			rows[k] = r
		}
		if ref.Environment == from {
			return &r.From
		}
		return &r.To
	}
	w := &where{}
	w.targetFilter(Filter{Workspace: f.Workspace, Application: f.Application, Workload: f.Workload, Target: f.Target})
	w.add("("+environmentIs("t", "?")+" OR "+environmentIs("t", "?")+")", from, to)
	targets, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, wl.source_repo, e.repo,
			COALESCE(sv.version, ''), COALESCE(sa.commit_sha, ''), COALESCE(sv.build_commit, ''), sa.assigned_at
		FROM targets t`+targetJoins+` JOIN endpoints e ON e.id = t.endpoint_id
		LEFT JOIN assignments sa ON sa.id = t.scheduled_assignment_id
		LEFT JOIN workload_versions sv ON sv.id = sa.version_id
		WHERE `+w.sql()+` ORDER BY t.name`, w.args...)
	if err != nil {
		return c, "", err
	}
	for targets.Next() {
		var ref TargetRef
		var src string
		var sc ScheduledCommit
		var at *time.Time
		if err := targets.Scan(&ref.Workspace, &ref.Application, &ref.Workload, &ref.Environment, &ref.Target, &src, &sc.ManifestsRepo,
			&sc.Version, &sc.Commit, &sc.BuildCommit, &at); err != nil {
			targets.Close()
			return c, "", err
		}
		sd := side(ref, src)
		sd.Targets = append(sd.Targets, ref.Target)
		if at != nil {
			sc.Target, sc.AssignedAt = ref.Target, at.UTC()
			sd.Scheduled = append(sd.Scheduled, sc)
		}
	}
	targets.Close()
	if err := targets.Err(); err != nil {
		return c, "", err
	}

	// What the hosts run: live reconcilers by target and commit, from the
	// maintained counts (a few rows a target, whatever the hosts).
	lw := &where{}
	lw.targetFilter(Filter{Workspace: f.Workspace, Application: f.Application, Workload: f.Workload, Target: f.Target})
	lw.add("("+environmentIs("t", "?")+" OR "+environmentIs("t", "?")+")", from, to)
	deployed, err := s.st.Read().Query(ctx, `SELECT ws.name, app.name, wl.name, env.name, t.name, c.commit_sha,
			COALESCE(v.version, ''), CASE WHEN res.assignment_id IS NULL THEN 0 ELSE 1 END, COALESCE(v.build_commit, ''), e.repo,
			sum(c.hosts), sum(CASE WHEN c.status = 'success' THEN c.hosts ELSE 0 END)
		FROM targets t`+targetJoins+`
		JOIN endpoints e ON e.id = t.endpoint_id
		JOIN endpoint_counts c ON c.endpoint_id = t.endpoint_id
		LEFT JOIN resolutions res ON res.target_id = t.id AND res.sha = c.commit_sha
		LEFT JOIN workload_versions v ON v.id = res.version_id
		WHERE `+lw.sql()+`
		GROUP BY ws.name, app.name, wl.name, env.name, t.name, c.commit_sha, v.version, res.assignment_id, v.build_commit, e.repo`, lw.args...)
	if err != nil {
		return c, "", err
	}
	for deployed.Next() {
		var ref TargetRef
		var d DeployedCommit
		var known int
		if err := deployed.Scan(&ref.Workspace, &ref.Application, &ref.Workload, &ref.Environment, &ref.Target, &d.Commit,
			&d.Version, &known, &d.BuildCommit, &d.ManifestsRepo, &d.Hosts, &d.Succeeded); err != nil {
			deployed.Close()
			return c, "", err
		}
		d.Target, d.VersionKnown = ref.Target, known == 1
		sd := side(ref, "")
		sd.Deployed = append(sd.Deployed, d)
	}
	deployed.Close()
	if err := deployed.Err(); err != nil {
		return c, "", err
	}

	for _, r := range rows {
		for _, sd := range []*ComparisonSide{&r.From, &r.To} {
			slices.SortFunc(sd.Deployed, func(a, b DeployedCommit) int {
				return cmp.Or(cmp.Compare(a.Target, b.Target), -cmp.Compare(a.Hosts, b.Hosts), cmp.Compare(a.Commit, b.Commit))
			})
		}
		r.Differs = !sameSet(scheduledVersions(r.From), scheduledVersions(r.To)) || !sameSet(deployedVersions(r.From), deployedVersions(r.To))
		c.Items = append(c.Items, *r)
	}
	slices.SortFunc(c.Items, func(a, b ComparisonRow) int {
		if a.Differs != b.Differs {
			if a.Differs {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Workspace, b.Workspace), cmp.Compare(a.Application, b.Application), cmp.Compare(a.Workload, b.Workload))
	})
	page, next, err := pageAfter("compare", c.Items, p, func(r ComparisonRow) compareKey {
		return compareKey{r.Differs, r.Workspace, r.Application, r.Workload}
	}, func(a, b compareKey) int {
		if a.Differs != b.Differs {
			if a.Differs {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Ws, b.Ws), cmp.Compare(a.App, b.App), cmp.Compare(a.Wl, b.Wl))
	})
	c.Items = page
	return c, next, err
}

// compareKey is the sort key of a comparison's rows: differing first.
type compareKey struct {
	Differs     bool
	Ws, App, Wl string
}

func scheduledVersions(s ComparisonSide) []string {
	var out []string
	for _, sc := range s.Scheduled {
		out = append(out, sc.Version)
	}
	return out
}

// deployedVersions are the versions a side's hosts deploy; hosts that have
// not reported yet deploy none, so they make no difference.
func deployedVersions(s ComparisonSide) []string {
	var out []string
	for _, d := range s.Deployed {
		if d.NotReported() {
			continue
		}
		v := d.Version
		if !d.VersionKnown {
			v = "\x00unknown:" + d.Commit
		}
		out = append(out, v)
	}
	return out
}

// sameSet reports whether a and b hold the same strings, ignoring order
// and repeats.
func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}
