package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tidemark-dev/tidemark/internal/store"
)

func newCheckCmd() *cobra.Command {
	var (
		database string
		limit    int
		repair   bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Compare the state kept for the reports with a recomputation",
		Long: `check recomputes, from the stored descriptors and reports, the state the
hub maintains at ingest for its reports (host counts per endpoint and
commit, and each endpoint's counts over time for time travel; each
reconciler's assignment and drift; per-assignment outcomes) and prints
every row that differs from what is stored. It reads one snapshot of the
primary, so a hub may keep ingesting meanwhile. Endpoints whose series
waits to be rebuilt from the history (the hub does it within seconds)
are counted; of one that a late report marked from its time, the
snapshots before it are compared (time travel still reads them), of one
marked whole (a move, retention, an upgrade) none.

Exit status 0: no difference; 1: differences (listed, "-" stored but not
recomputed, "+" recomputed but not stored). With --repair, the maintained
state is rebuilt from the primary tables in one transaction, then checked
again.`,
		Example: `  tidemark check --database postgres://tidemark@db:5432/tidemark
  tidemark check --database tidemark.db --repair`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := openStore(ctx, database)
			if err != nil {
				return err
			}
			defer st.Close()
			if repair {
				if err := st.Tx(ctx, func(q store.Querier) error { return store.Rebuild(ctx, q) }); err != nil {
					return fmt.Errorf("repair: %w", err)
				}
				for {
					n, err := st.RebuildSeries(ctx, 1000)
					if err != nil {
						return fmt.Errorf("repair: %w", err)
					}
					if n == 0 {
						break
					}
				}
				fmt.Fprintln(cmd.OutOrStdout(), "maintained state rebuilt")
			}
			if n, err := st.DirtySeries(ctx); err != nil {
				return err
			} else if n > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d endpoint series wait for their rebuild from the history (not compared)\n", n)
			}
			diffs, err := st.CheckMaintained(ctx, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, d := range diffs {
				fmt.Fprintf(out, "%s %s %s\n", d.Side, d.Table, d.Row)
			}
			if len(diffs) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d rows of the maintained state differ from a recomputation (at most %d per table shown): run tidemark check --repair, and report the rows as a bug", len(diffs), limit)}
			}
			fmt.Fprintln(out, "the maintained state matches a recomputation")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&database, "database", envOr("TIDEMARK_DATABASE_URL", defaultDatabase), "store: an SQLite file path, or postgres://... (env TIDEMARK_DATABASE_URL)")
	f.IntVar(&limit, "limit", 20, "differences shown per table")
	f.BoolVar(&repair, "repair", false, "rebuild the maintained state first")
	return cmd
}
