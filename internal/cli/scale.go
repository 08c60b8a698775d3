package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/store/postgres"
)

// retentionFlag is --history-retention: how long status history is kept.
type retentionFlag struct {
	keep time.Duration
	// env holds TIDEMARK_HISTORY_RETENTION until it is checked.
	env string
}

func (f *retentionFlag) register(cmd *cobra.Command) {
	f.env = os.Getenv("TIDEMARK_HISTORY_RETENTION")
	cmd.Flags().Var(f, "history-retention",
		"how long status history is kept, e.g. 400d or 9600h; 0 keeps everything (env TIDEMARK_HISTORY_RETENTION). "+
			"Environment History and DORA do not depend on it")
}

// String implements pflag.Value.
func (f *retentionFlag) String() string {
	if f.keep == 0 {
		return "0"
	}
	if f.keep%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(f.keep/(24*time.Hour)), 10) + "d"
	}
	return f.keep.String()
}

// Type implements pflag.Value.
func (f *retentionFlag) Type() string { return "duration" }

// Set implements pflag.Value: a Go duration, a number of days ("400d"),
// or 0.
func (f *retentionFlag) Set(s string) error {
	f.env = ""
	d, err := parseRetention(s)
	if err != nil {
		return err
	}
	f.keep = d
	return nil
}

func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 32)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: give a positive number of days (400d) or hours (9600h), or 0 to keep everything", s)
	}
	return d, nil
}

// policy returns the history policy, reading TIDEMARK_HISTORY_RETENTION
// when the flag was not given.
func (f *retentionFlag) policy() (store.HistoryPolicy, error) {
	if f.env != "" {
		d, err := parseRetention(f.env)
		if err != nil {
			return store.HistoryPolicy{}, fmt.Errorf("TIDEMARK_HISTORY_RETENTION %w", err)
		}
		f.keep, f.env = d, ""
	}
	return store.HistoryPolicy{Retention: f.keep}, nil
}

// startHistoryMaintenance runs the store's history maintenance (partitions
// ahead, retention) in the background until the returned stop is called.
func startHistoryMaintenance(ctx context.Context, st *store.Store, p store.HistoryPolicy, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { st.RunHistoryMaintenance(ctx, p, log) })
	if p.Retention > 0 {
		log.Info("history retention", "keep", p.Retention.String(), "engine", st.Engine())
	}
	return func() { cancel(); wg.Wait() }
}

// replicaFlags are the flags of read replicas.
type replicaFlags struct {
	urls          []string
	maxLag        time.Duration
	checkInterval time.Duration
}

func (f *replicaFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	var def []string
	if env := os.Getenv("TIDEMARK_READ_DATABASE_URLS"); env != "" {
		def = []string{env}
	}
	fl.StringArrayVar(&f.urls, "read-database", def,
		"a read replica of the PostgreSQL --database, postgres://...; repeat it or separate URLs with commas "+
			"(env TIDEMARK_READ_DATABASE_URLS). Reports read from healthy replicas; writes and the rollout gate use the primary")
	fl.DurationVar(&f.maxLag, "max-replica-lag", envDuration("TIDEMARK_MAX_REPLICA_LAG", store.DefaultMaxReplicaLag),
		"a read replica further behind the primary than this serves no reads until it catches up (env TIDEMARK_MAX_REPLICA_LAG)")
	fl.DurationVar(&f.checkInterval, "replica-check-interval", store.DefaultReplicaCheckInterval,
		"how often the read replicas' health and lag are measured")
}

// envDuration is the duration in the environment variable name, else def.
// A value that does not parse is left to the flag's default and reported
// when the flag is read (see replicaFlags.options).
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// options opens the read replicas and returns the store options for
// them; nil when there are none.
func (f *replicaFlags) options(database string) ([]store.Option, func(), error) {
	if v := os.Getenv("TIDEMARK_MAX_REPLICA_LAG"); v != "" {
		if _, err := time.ParseDuration(v); err != nil {
			return nil, nil, fmt.Errorf("TIDEMARK_MAX_REPLICA_LAG %q: give a duration such as 30s", v)
		}
	}
	urls := splitURLs(f.urls)
	if len(urls) == 0 {
		return nil, func() {}, nil
	}
	if !isPostgresURL(database) {
		return nil, nil, errors.New("--read-database: read replicas need a PostgreSQL --database (postgres://...)")
	}
	if f.maxLag <= 0 || f.checkInterval <= 0 {
		return nil, nil, errors.New("--max-replica-lag and --replica-check-interval: give positive durations, e.g. 30s and 2s")
	}
	var reps []store.Replica
	closeAll := func() {
		for _, r := range reps {
			r.Close()
		}
	}
	for _, u := range urls {
		if !isPostgresURL(u) {
			closeAll()
			return nil, nil, fmt.Errorf("--read-database %s: give a postgres:// URL", redactURL(u))
		}
		r, err := postgres.OpenReplica(u)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--read-database %s: %w", redactURL(u), err)
		}
		reps = append(reps, r)
	}
	return []store.Option{store.WithReplicas(reps...), store.WithMaxReplicaLag(f.maxLag), store.WithReplicaCheckInterval(f.checkInterval)},
		closeAll, nil
}

// splitURLs splits comma-separated lists of URLs. A comma separates two
// URLs only where a new URL starts: PostgreSQL URLs may list several
// hosts, postgres://a,b/db, with commas of their own.
func splitURLs(values []string) []string {
	var out []string
	for _, v := range values {
		start := 0
		for i := 0; i < len(v); i++ {
			if v[i] == ',' && isPostgresURL(strings.TrimSpace(v[i+1:])) {
				out = appendNonEmpty(out, v[start:i])
				start = i + 1
			}
		}
		out = appendNonEmpty(out, v[start:])
	}
	return out
}

func appendNonEmpty(list []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		list = append(list, s)
	}
	return list
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}
