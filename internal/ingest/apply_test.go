package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// A batch is stored whole or not at all: a conflict at its third
// descriptor leaves the first two unstored, with the index of the one at
// fault; invalid inputs are all reported, nothing is stored.
func TestApplyIsAllOrNothing(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ing := ingest.New(st)
		if _, err := ing.ApplyDescriptor(ctx, benchDescriptor(1)); err != nil {
			t.Fatal(err)
		}
		rows := func() (n int) {
			if err := st.Read().QueryRow(ctx, `SELECT (SELECT count(*) FROM assignments) + (SELECT count(*) FROM reconcilers)`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := rows()
		first := benchDescriptor(2)
		first.Build = "b"
		second := first
		second.Build = "other build" // the same version, re-published differently
		_, err := ing.Apply(ctx, ingest.Batch{
			Descriptors: []model.Descriptor{benchDescriptor(3), first, second},
			Reports:     []model.Report{benchReport(1, 1, model.StatusSuccess)},
		})
		var ie *ingest.InputError
		var ce *ingest.ConflictError
		if !errors.As(err, &ie) || ie.Kind != "descriptor" || ie.Index != 2 || !errors.As(err, &ce) {
			t.Fatalf("error %v, want a conflict at descriptor 2", err)
		}
		if n := rows(); n != before {
			t.Errorf("a refused batch stored %d rows", n-before)
		}

		bad := benchReport(2, 1, model.StatusSuccess)
		bad.Host = ""
		worse := benchReport(3, 1, model.StatusSuccess)
		worse.Commit = "not-a-sha"
		_, err = ing.Apply(ctx, ingest.Batch{Reports: []model.Report{benchReport(4, 1, model.StatusSuccess), bad, worse}})
		var got []int
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ie *ingest.InputError
			var ve *model.ValidationError
			if errors.As(e, &ie) && errors.As(e, &ve) {
				got = append(got, ie.Index)
			}
		}
		if len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Errorf("invalid reports %v, want 1 and 2: %v", got, err)
		}
		if n := rows(); n != before {
			t.Errorf("an invalid batch stored %d rows", n-before)
		}
	})
}

// Retiring through a batch; a source retires what it no longer reports,
// and only what it reported.
func TestRetireMissing(t *testing.T) {
	testenv.EachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ing := ingest.New(st, ingest.WithClock(func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }))
		var rs []model.Report
		for i := range 4 {
			r := benchReport(i, 1, model.StatusSuccess)
			if i < 3 {
				r.Source = "azure-resource-graph/fleet"
			}
			rs = append(rs, r)
		}
		if _, err := ing.ApplyReports(ctx, rs); err != nil {
			t.Fatal(err)
		}
		keep := []model.ReconcilerKey{{Host: rs[0].Host, Name: rs[0].Reconciler}}
		retired, err := ing.RetireMissing(ctx, "azure-resource-graph/fleet", keep)
		if err != nil {
			t.Fatal(err)
		}
		if len(retired) != 2 || retired[0].Host != rs[1].Host || retired[1].Host != rs[2].Host {
			t.Errorf("retired %v, want the hosts of reports 1 and 2", retired)
		}
		var live int
		if err := st.Read().QueryRow(ctx, `SELECT count(*) FROM reconcilers WHERE retired_at IS NULL`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live != 2 {
			t.Errorf("%d live reconcilers, want 2 (the one kept and the one of another source)", live)
		}
		if again, _ := ing.RetireMissing(ctx, "azure-resource-graph/fleet", keep); len(again) != 0 {
			t.Errorf("retired twice: %v", again)
		}
	})
}
