package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// Exit codes of tidemark wait.
const (
	waitSucceeded = 0 // every host of the target succeeded
	waitFailed    = 1 // some host failed
	waitTimeout   = 2 // --timeout passed first
	waitError     = 3 // usage error, or the hub could not be asked
)

func newWaitCmd() *cobra.Command {
	var (
		c                 client
		q                 reports.GateQuery
		timeout, interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait (--target T | --endpoint E) (--version V | --commit C)",
		Short: "Wait until a version reaches success on every host of a target (rollout gate)",
		Long: `Wait until a version (or GitOps commit) reaches success on every host of a
deployment target, printing progress as it changes. For CD pipelines: run it
after promoting a version, before the next stage.

--workload, --application, --workspace and --environment tell apart targets
of the same name. Connection errors and answers 5xx are retried until the
timeout; a target or version the hub does not know yet is waited for.

Exit codes:
  0  every host succeeded
  1  a host failed (the failed hosts are printed with their messages)
  2  the timeout passed first (the pending hosts are printed)
  3  usage error, an ambiguous target, a refused token, or the hub could
     not be reached before the timeout`,
		Example: `  tidemark wait --target drone --environment prod --version 1.4.2 --timeout 15m
  tidemark wait --endpoint https://github.com/org/gitops/prod/drone --commit 5ce0653 --server https://tidemark.example.com`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &exitError{waitError, fmt.Errorf("wait takes no arguments, got %q", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case (q.Target == "") == (q.Endpoint == ""):
				return &exitError{waitError, errors.New("give --target or --endpoint")}
			case (q.Version == "") == (q.Commit == ""):
				return &exitError{waitError, errors.New("give --version or --commit")}
			case timeout <= 0 || interval <= 0:
				return &exitError{waitError, errors.New("--timeout and --interval must be positive")}
			}
			code, err := waitRollout(cmd.Context(), &c, q, timeout, interval, cmd.OutOrStdout())
			if code != waitSucceeded {
				if err == nil {
					err = errors.New("rollout failed")
				}
				return &exitError{code, err}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{waitError, err} })
	c.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&q.Target, "target", "", "the deployment target")
	f.StringVar(&q.Endpoint, "endpoint", "", "or the manifests endpoint (repository/branch/path) the hosts reconcile")
	f.StringVar(&q.Version, "version", "", "the workload version to wait for")
	f.StringVar(&q.Commit, "commit", "", "or the GitOps commit")
	f.StringVar(&q.Workload, "workload", "", "the target's workload (when target names repeat)")
	f.StringVar(&q.Application, "application", "", "the target's application")
	f.StringVar(&q.Workspace, "workspace", "", "the target's workspace")
	f.StringVar(&q.Environment, "environment", "", "the target's environment")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (exit 2)")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between polls")
	return cmd
}

// waitRollout polls the gate until it is done, failing, or the timeout
// passes; it returns the exit code.
func waitRollout(ctx context.Context, c *client, q reports.GateQuery, timeout, interval time.Duration, out io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v := url.Values{}
	for k, val := range map[string]string{"target": q.Target, "endpoint": q.Endpoint, "version": q.Version, "commit": q.Commit,
		"workload": q.Workload, "application": q.Application, "workspace": q.Workspace, "environment": q.Environment} {
		if val != "" {
			v.Set(k, val)
		}
	}
	path := "/api/v1/rollouts?" + v.Encode()
	what := q.Version
	if what == "" {
		what = "commit " + q.Commit
	}
	where := q.Target
	if where == "" {
		where = q.Endpoint
	}

	var (
		answered     bool   // the hub answered at least once
		lastProgress string // the last progress line printed
		lastProblem  string // the last error or wait reason printed
		lastErr      error
		last         *reports.Gate // the last answer
	)
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	for {
		var g reports.Gate
		err := c.do(ctx, http.MethodGet, path, nil, &g)
		switch {
		case err == nil:
			answered, lastErr, last = true, nil, &g
			if lastProgress == "" {
				say("waiting for %s on %s (%s/%s/%s in %s): %d hosts", describeVersion(g), g.Target, g.Workspace, g.Application, g.Workload, g.Environment, g.Total)
			}
			if line := progressLine(g); line != lastProgress {
				say("%s", line)
				lastProgress, lastProblem = line, ""
			}
			switch {
			case g.Failing:
				printHosts(out, g, "FAILED HOST", "failed")
				return waitFailed, fmt.Errorf("%d of %d hosts failed %s", g.Failed, g.Total, describeVersion(g))
			case g.Done:
				say("%s reached success on all %d hosts of %s", describeVersion(g), g.Total, g.Target)
				if n, commits := laterCommits(g); n > 0 {
					say("%d of %d hosts run it from a later GitOps commit of the branch, as Host State shows: %s", n, g.Total, strings.Join(commits, ", "))
				}
				return waitSucceeded, nil
			}
		case ctx.Err() != nil:
			// The timeout passed during the request.
		default:
			lastErr = err
			var pe *problemError
			if errors.As(err, &pe) {
				switch pe.p.Status {
				case http.StatusNotFound:
					// Not known yet: the descriptor may not have reached
					// the hub. Wait for it.
					answered = true
				case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusUnprocessableEntity:
					return waitError, err
				}
			}
			if msg := err.Error(); msg != lastProblem {
				say("waiting: %s", msg)
				lastProblem = msg
			}
		}
		select {
		case <-ctx.Done():
			if parent := context.Cause(ctx); !errors.Is(parent, context.DeadlineExceeded) {
				return waitError, parent
			}
			if !answered && lastErr != nil {
				return waitError, fmt.Errorf("the hub did not answer in %s: %w", timeout, lastErr)
			}
			status := lastProgress
			if status == "" && lastErr != nil {
				status = lastErr.Error()
			}
			if last != nil {
				printHosts(out, *last, "PENDING HOST", "in_progress", reports.StatusNotReported)
			}
			return waitTimeout, fmt.Errorf("timed out after %s waiting for %s on %s: %s", timeout, what, where, status)
		case <-time.After(interval):
		}
	}
}

func describeVersion(g reports.Gate) string {
	switch {
	case g.Version != "" && g.Commit != "":
		return g.Version + " (" + shortSHA(g.Commit) + ")"
	case g.Version != "":
		return g.Version
	}
	return "commit " + shortSHA(g.Commit)
}

// laterCommits counts the hosts whose commit is not the assignment's (a
// later commit of the branch that resolves to the same version: another
// target's change) and lists those commits, short, in the hosts' order.
// Without this line, a pipeline log names one commit and Host State
// another for the same rollout.
func laterCommits(g reports.Gate) (n int, commits []string) {
	for _, h := range g.Hosts {
		if h.Commit == "" || h.Commit == g.Commit {
			continue
		}
		n++
		if c := shortSHA(h.Commit); !slices.Contains(commits, c) {
			commits = append(commits, c)
		}
	}
	return n, commits
}

// progressLine is "37/48 hosts succeeded · 2 in progress · 9 pending",
// with failures when there are some.
func progressLine(g reports.Gate) string {
	parts := []string{fmt.Sprintf("%d/%d hosts succeeded", g.Succeeded, g.Total)}
	if g.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", g.Failed))
	}
	parts = append(parts, fmt.Sprintf("%d in progress", g.InProgress), fmt.Sprintf("%d pending", g.NotReported))
	return strings.Join(parts, " · ")
}

// printFailed lists the failed hosts with their messages.
// printHosts prints the gate's hosts in the given states: the failed ones
// when a rollout fails, those still pending when the wait times out.
func printHosts(out io.Writer, g reports.Gate, heading string, states ...string) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, heading+"\tRECONCILER\tVERSION\tCOMMIT\tSINCE\tMESSAGE")
	for _, h := range g.Hosts {
		if !slices.Contains(states, h.State) {
			continue
		}
		msg := strings.Join(strings.Fields(h.Message), " ")
		status := "" // a host that has run nothing yet prints as not reported
		if h.Commit == "" {
			status = reports.StatusNotReported
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, h.Reconciler, deployedVersion(h.Version, h.Version != "", status),
			shortSHA(h.Commit), formatTime(h.Since), msg)
	}
	tw.Flush()
}
