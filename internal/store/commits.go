package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// The correlation tables: when each commit was first seen on each endpoint
// (commits), and the assignment in effect for each target at each commit
// (resolutions). Ingest decides what is in effect (internal/ingest
// resolve.go); these functions read and write the rows.

// CommitMatch renders a condition that column col holds a commit that
// names the same object as sha, as model.CommitsMatch decides: equal, an
// abbreviation of sha, or sha abbreviates it. Revisions are lower-case hex,
// so the commits that sha abbreviates sort between sha and sha+"g".
func CommitMatch(col, sha string, a *Args) string {
	cond := col + " = " + a.Bind(sha)
	if n := len(sha); n > model.MinAbbrevLen {
		prefixes := make([]string, 0, n-model.MinAbbrevLen)
		for l := model.MinAbbrevLen; l < n; l++ {
			prefixes = append(prefixes, sha[:l])
		}
		cond += " OR " + col + " IN (" + BindList(a, prefixes) + ")"
	}
	if len(sha) < model.MaxRevisionLen {
		cond += " OR (" + col + " > " + a.Bind(sha) + " AND " + col + " < " + a.Bind(sha+"g") + ")"
	}
	return "(" + cond + ")"
}

// RecordCommit notes that sha was seen on an endpoint at seen. It reports
// whether that changed when the commit was first seen there (a new commit,
// or seen earlier than recorded).
func RecordCommit(ctx context.Context, q Querier, endpointID int64, sha string, seen time.Time) (bool, error) {
	n, err := q.Exec(ctx, `INSERT INTO commits (endpoint_id, sha, first_seen) VALUES ($1, $2, $3)
		ON CONFLICT (endpoint_id, sha) DO UPDATE SET first_seen = excluded.first_seen
		WHERE excluded.first_seen < commits.first_seen`, endpointID, sha, seen)
	return n > 0, err
}

// CommitSeen is a commit on a target's endpoint and when it was first seen
// anywhere on the target's branch (by any spelling of it: see CommitMatch).
type CommitSeen struct {
	SHA       string
	FirstSeen time.Time
}

// branchFirstSeen is the earliest time commit c.sha (in any spelling) was
// seen on the endpoints of branch $branch, or on endpoint $endpoint alone
// when the branch is unknown. Each spelling is its own index lookup on
// commits(sha), so the cost follows the matching rows, not the commits
// stored: the same spelling; an abbreviation of it (one of its prefixes);
// a longer spelling it abbreviates (a range: revisions are lower-case hex).
func branchFirstSeen(endpoint, branch string) string {
	from := `FROM commits c2 JOIN endpoints e2 ON e2.id = c2.endpoint_id
		WHERE (c2.endpoint_id = ` + endpoint + ` OR (` + branch + ` <> '' AND e2.branch_key = ` + branch + `)) AND `
	return `(SELECT min(f) FROM (
		SELECT c2.first_seen AS f ` + from + `c2.sha = c.sha
		UNION ALL SELECT c2.first_seen ` + from + `c2.sha IN (` + abbreviationsOfC + `) AND length(c2.sha) < length(c.sha)
		UNION ALL SELECT c2.first_seen ` + from + `c2.sha > c.sha AND c2.sha < c.sha || 'g') AS seen)`
}

// abbreviationsOfC lists, in SQL, the prefixes of c.sha an abbreviation
// can be: from model.MinAbbrevLen characters to one short of the longest
// revision. Built once: it is part of every branch-first-seen query.
var abbreviationsOfC = prefixesOf("c.sha")

func prefixesOf(col string) string {
	var b strings.Builder
	for n := model.MinAbbrevLen; n < model.MaxRevisionLen; n++ {
		if n > model.MinAbbrevLen {
			b.WriteString(", ")
		}
		b.WriteString("substr(" + col + ", 1, " + strconv.Itoa(n) + ")")
	}
	return b.String()
}

// TargetCommits lists the commits seen on a target's endpoint whose
// resolution a change can affect: with all, every one; else those first
// seen on the target's branch at or after since (when not zero) and those
// that match one of shas.
func TargetCommits(ctx context.Context, q Querier, t TargetRow, all bool, since time.Time, shas []string) ([]CommitSeen, error) {
	var a Args
	ep, br := a.Bind(t.EndpointID), a.Bind(t.BranchKey)
	cond := "TRUE"
	if !all {
		cond = "FALSE"
		if !since.IsZero() {
			// first_seen on the endpoint is never earlier than on its branch.
			cond += " OR c.first_seen >= " + a.Bind(since)
		}
		for _, sha := range shas {
			cond += " OR " + CommitMatch("c.sha", sha, &a)
		}
	}
	found, err := Collect(ctx, q, `SELECT c.sha, `+branchFirstSeen(ep, br)+` FROM commits c
		WHERE c.endpoint_id = `+ep+` AND (`+cond+`) ORDER BY c.sha`, a, func(r Row) (CommitSeen, error) {
		var c CommitSeen
		err := r.Scan(&c.SHA, &c.FirstSeen)
		return c, err
	})
	if err != nil || all || since.IsZero() {
		return found, err
	}
	out := found[:0]
	for _, c := range found {
		if !c.FirstSeen.Before(since) || slices.ContainsFunc(shas, func(s string) bool { return model.CommitsMatch(c.SHA, s) }) {
			out = append(out, c)
		}
	}
	return out, nil
}

// TargetCommit is a commit on a target's endpoint to resolve again.
type TargetCommit struct {
	Target TargetRow
	SHA    string
}

// CommitTargets lists the (target, commit) pairs whose resolution may have
// changed because sha was recorded on an endpoint at seen: the endpoint's
// own targets, and, when this moved the time sha was first seen on the
// branch, the branch's other targets; each with the spellings of sha their
// endpoint has seen. Pairs come in target order, so that writers lock
// resolutions in one order.
func CommitTargets(ctx context.Context, q Querier, ep EndpointRow, sha string, seen time.Time) ([]TargetCommit, error) {
	var a Args
	id, br, at := a.Bind(ep.ID), a.Bind(ep.BranchKey), a.Bind(seen)
	match := CommitMatch("c.sha", sha, &a)
	earlier := CommitMatch("o.sha", sha, &a)
	return Collect(ctx, q, `SELECT t.id, t.endpoint_id, e.branch_key, c.sha FROM targets t
		JOIN endpoints e ON e.id = t.endpoint_id
		JOIN commits c ON c.endpoint_id = t.endpoint_id AND `+match+`
		WHERE t.endpoint_id = `+id+` OR (`+br+` <> '' AND e.branch_key = `+br+` AND NOT EXISTS (
			SELECT 1 FROM commits o JOIN endpoints oe ON oe.id = o.endpoint_id
			WHERE `+earlier+` AND o.endpoint_id <> `+id+` AND oe.branch_key = `+br+` AND o.first_seen <= `+at+`))
		ORDER BY t.id, c.sha`, a, func(r Row) (TargetCommit, error) {
		var tc TargetCommit
		err := r.Scan(&tc.Target.ID, &tc.Target.EndpointID, &tc.Target.BranchKey, &tc.SHA)
		return tc, err
	})
}

// BranchTargets lists the targets on a branch, in id order.
func BranchTargets(ctx context.Context, q Querier, branchKey string) ([]TargetRow, error) {
	return Collect(ctx, q, `SELECT t.id, t.endpoint_id, e.branch_key FROM targets t JOIN endpoints e ON e.id = t.endpoint_id
		WHERE e.branch_key = $1 ORDER BY t.id`, []any{branchKey}, scanTarget)
}

func scanTarget(r Row) (TargetRow, error) {
	var t TargetRow
	err := r.Scan(&t.ID, &t.EndpointID, &t.BranchKey)
	return t, err
}

// TargetResolutions returns the stored resolution of commits of a target:
// the assignment in effect, or 0 for an unknown version.
func TargetResolutions(ctx context.Context, q Querier, targetID int64, shas []string) (map[string]int64, error) {
	var a Args
	cond := "target_id = " + a.Bind(targetID)
	if len(shas) > 0 {
		cond += " AND sha IN (" + BindList(&a, shas) + ")"
	}
	type res struct {
		sha string
		id  int64
	}
	rows, err := Collect(ctx, q, `SELECT sha, COALESCE(assignment_id, 0) FROM resolutions WHERE `+cond, a, func(r Row) (res, error) {
		var x res
		err := r.Scan(&x.sha, &x.id)
		return x, err
	})
	out := make(map[string]int64, len(rows))
	for _, x := range rows {
		out[x.sha] = x.id
	}
	return out, err
}

// SetResolution stores which assignment (0: none, unknown version) is in
// effect for a target at a commit, with the assignment's version.
func SetResolution(ctx context.Context, q Querier, targetID int64, sha string, assignmentID int64) error {
	var a any
	if assignmentID != 0 {
		a = assignmentID
	}
	_, err := q.Exec(ctx, `INSERT INTO resolutions (target_id, sha, assignment_id, version_id)
		VALUES ($1, $2, $3, (SELECT version_id FROM assignments WHERE id = $3))
		ON CONFLICT (target_id, sha) DO UPDATE SET assignment_id = excluded.assignment_id, version_id = excluded.version_id`, targetID, sha, a)
	return err
}
