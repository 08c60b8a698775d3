package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/tidemark-dev/tidemark/internal/reports"
)

// maxExportRows bounds an export: a download holds every page of a table,
// up to this many items.
const maxExportRows = 100_000

// table is a downloadable table of a page: every row matching the page's
// filters, across pages, as CSV or JSON.
type table struct {
	label  string
	header []string
	// each calls emit for every item in order: the item as the API's JSON
	// shows it, and its CSV records (one or more).
	each func(ctx context.Context, emit func(item any, records ...[]string) error) error
}

// pagedTable exports a paged report by walking its pages.
func pagedTable[T any](label string, header []string, records func(T) [][]string,
	fetch func(ctx context.Context, p reports.Page) ([]T, string, error)) table {
	return table{label: label, header: header, each: func(ctx context.Context, emit func(any, ...[]string) error) error {
		p := reports.Page{Limit: reports.MaxLimit}
		for n := 0; n < maxExportRows; {
			items, next, err := fetch(ctx, p)
			if err != nil {
				return err
			}
			for _, it := range items {
				if err := emit(it, records(it)...); err != nil {
					return err
				}
				if n++; n >= maxExportRows {
					return nil
				}
			}
			if next == "" {
				return nil
			}
			p.Cursor = next
		}
		return nil
	}}
}

// listTable exports items already read.
func listTable[T any](label string, header []string, records func(T) [][]string, items []T) table {
	return table{label: label, header: header, each: func(_ context.Context, emit func(any, ...[]string) error) error {
		for _, it := range items {
			if err := emit(it, records(it)...); err != nil {
				return err
			}
		}
		return nil
	}}
}

// one is a records function of a single record.
func one[T any](f func(T) []string) func(T) [][]string {
	return func(v T) [][]string { return [][]string{f(v)} }
}

func sortedTableNames(m map[string]table) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// export writes a page's table as CSV or JSON.
func (s *Server) export(w http.ResponseWriter, r *http.Request, v *view, format string) {
	name := r.URL.Query().Get("table")
	if name == "" && len(v.Tables) == 1 {
		name = sortedTableNames(v.Tables)[0]
	}
	tb, ok := v.Tables[name]
	switch {
	case format != "csv" && format != "json":
		s.renderError(w, r, &inputError{"format", "use csv or json (or leave it out for the page)"})
		return
	case !ok:
		s.renderError(w, r, &inputError{"table", "this page's tables are " + strings.Join(sortedTableNames(v.Tables), ", ")})
		return
	}
	file := "tidemark-" + name + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	w.Header().Set("Cache-Control", "no-store")
	var err error
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write(tb.header)
		err = tb.each(r.Context(), func(_ any, records ...[]string) error {
			for _, rec := range records {
				if err := cw.Write(safeCSV(rec)); err != nil {
					return err
				}
			}
			return nil
		})
		cw.Flush()
	} else {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[`))
		first := true
		err = tb.each(r.Context(), func(item any, _ ...[]string) error {
			b, err := json.Marshal(item)
			if err != nil {
				return err
			}
			if !first {
				_, _ = w.Write([]byte(",\n"))
			}
			first = false
			_, err = w.Write(b)
			return err
		})
		_, _ = w.Write([]byte("]}\n"))
	}
	if err != nil && r.Context().Err() == nil {
		// The status is sent; the log says why the file is short.
		s.log.Error("export", "path", r.URL.Path, "table", name, "err", err)
	}
}

// safeCSV keeps spreadsheet programs from running a cell as a formula.
func safeCSV(rec []string) []string {
	out := rec
	for i, c := range rec {
		if c != "" && strings.ContainsRune("=+@\t\r", rune(c[0])) || strings.HasPrefix(c, "-") && len(c) > 1 && !(c[1] >= '0' && c[1] <= '9') {
			if &out[0] == &rec[0] {
				out = slices.Clone(rec)
			}
			out[i] = "'" + c
		}
	}
	return out
}
