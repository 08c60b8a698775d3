// Package otlp receives deployment reports as OpenTelemetry logs: the OTLP
// logs service over HTTP (POST /v1/logs, protobuf or JSON, gzip) and gRPC,
// as the OpenTelemetry Collector's otlphttp and otlp exporters send them.
// Each log record that carries the attributes of the contract in
// mapping.go is one reconciler report; the reports of one request go to
// ingest's batch path together. A record that makes no report is rejected
// alone, with its reason, in the response's partial_success: it never
// fails the request.
package otlp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/sources"
)

// SourceName is the source of the reports the receiver stores.
const SourceName = "otlp"

// EnvironmentLookup gives the environments of the targets of manifests
// endpoints (reports.Service does).
type EnvironmentLookup interface {
	EndpointEnvironments(ctx context.Context, keys []string) (map[string][]string, error)
}

// Options configure a Receiver.
type Options struct {
	Logger *slog.Logger
	// Registerer registers the receiver's metrics; none when nil.
	Registerer prometheus.Registerer
	// Environments, when set, checks deployment.environment.name against
	// the environments of the targets of each report's endpoint.
	Environments EnvironmentLookup
	// Clock is the source of "now" (tests); time.Now when nil.
	Clock func() time.Time
}

// Receiver turns OTLP log exports into reports.
type Receiver struct {
	ingest  *ingest.Service
	envs    EnvironmentLookup
	metrics *sources.Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Receiver storing reports through ing.
func New(ing *ingest.Service, opts Options) (*Receiver, error) {
	m, err := sources.NewMetrics(opts.Registerer, SourceName)
	if err != nil {
		return nil, fmt.Errorf("otlp metrics: %w", err)
	}
	r := &Receiver{ingest: ing, envs: opts.Environments, metrics: m, log: opts.Logger, now: opts.Clock}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Result says what one export did.
type Result struct {
	// Received counts the log records.
	Received int
	// Applied counts the reports that changed the stored state; the rest
	// of the accepted records repeated it.
	Applied int
	// Rejected counts the records that made no report, by reason.
	Rejected map[string]int
	// Warnings counts the reports stored with a warning, by reason.
	Warnings map[string]int
	// details holds one example detail per reason.
	details map[string]string
}

// RejectedTotal is the number of rejected records.
func (r Result) RejectedTotal() int {
	n := 0
	for _, c := range r.Rejected {
		n += c
	}
	return n
}

func (r *Result) note(counts map[string]int, reason, detail string) {
	counts[reason]++
	if _, ok := r.details[reason]; !ok {
		r.details[reason] = detail
	}
}

// Message is the partial_success error message: each reason with its
// count and one example, rejections first. Empty when all was well.
func (r Result) Message() string {
	var parts []string
	for _, group := range []struct {
		verb   string
		counts map[string]int
	}{{"rejected", r.Rejected}, {"stored with a warning", r.Warnings}} {
		for _, reason := range slices.Sorted(maps.Keys(group.counts)) {
			parts = append(parts, fmt.Sprintf("%d %s (%s), e.g. %s", group.counts[reason], group.verb, reason, r.details[reason]))
		}
	}
	return strings.Join(parts, "; ")
}

// Apply stores the reports that the log records make, all in one batch,
// and says what became of each record. Records that make no report are
// counted, not stored; an error means nothing was stored (such as an
// unavailable store) and the export may be retried as a whole.
func (r *Receiver) Apply(ctx context.Context, logs plog.Logs) (Result, error) {
	res := Result{Rejected: map[string]int{}, Warnings: map[string]int{}, details: map[string]string{}}
	recs := make([]Record, 0, logs.LogRecordCount())
	var m mapper
	rls := logs.ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		resource := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				res.Received++
				rec, rej := m.mapRecord(resource, lrs.At(k))
				if rej != nil {
					res.note(res.Rejected, rej.Reason, rej.Detail)
					continue
				}
				recs = append(recs, rec)
			}
		}
	}
	r.metrics.Received.Add(float64(res.Received))
	for reason, n := range res.Rejected {
		r.metrics.Rejected.WithLabelValues(reason).Add(float64(n))
	}
	if len(recs) == 0 {
		return res, nil
	}
	if err := r.checkEnvironments(ctx, recs, &res); err != nil {
		return res, err
	}
	// A batch may hold several reports of one reconciler: they apply in
	// the order the reconciler reached them. Reports without a time keep
	// their place after the timed ones.
	slices.SortStableFunc(recs, func(a, b Record) int {
		ta, tb := a.Report.ObservedAt, b.Report.ObservedAt
		if ta.IsZero() || tb.IsZero() {
			return cmp.Compare(boolInt(ta.IsZero()), boolInt(tb.IsZero()))
		}
		return ta.Compare(tb)
	})
	reps := make([]model.Report, len(recs))
	for i, rec := range recs {
		reps[i] = rec.Report
	}
	out, err := r.ingest.ApplyReports(ctx, reps)
	if err != nil {
		return res, err
	}
	now := r.now()
	for i, o := range out {
		if o.Changed {
			res.Applied++
		}
		r.metrics.ObserveLag(reps[i].ObservedAt, now)
	}
	r.metrics.Applied.Add(float64(res.Applied))
	for reason, n := range res.Warnings {
		r.metrics.Warnings.WithLabelValues(reason).Add(float64(n))
	}
	return res, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkEnvironments warns about reports whose deployment.environment.name
// is none of the environments of the targets their endpoint serves. The
// report is stored all the same: the endpoint decides the target.
func (r *Receiver) checkEnvironments(ctx context.Context, recs []Record, res *Result) error {
	if r.envs == nil {
		return nil
	}
	seen := map[string]bool{}
	var keys []string
	for _, rec := range recs {
		if k := rec.Report.Endpoint.Key(); rec.Environment != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	envs, err := r.envs.EndpointEnvironments(ctx, keys)
	if err != nil {
		return fmt.Errorf("read the environments of %d endpoints: %w", len(keys), err)
	}
	for _, rec := range recs {
		known, ok := envs[rec.Report.Endpoint.Key()]
		if rec.Environment == "" || !ok || slices.Contains(known, rec.Environment) {
			continue
		}
		res.note(res.Warnings, ReasonEnvironmentDiffer, fmt.Sprintf("%s %q of %s/%s: the targets of %s are in %s (stored all the same)",
			AttrEnvironment, rec.Environment, rec.Report.Host, rec.Report.Reconciler, rec.Report.Endpoint, strings.Join(known, ", ")))
	}
	return nil
}

// export applies an OTLP export request and builds its response.
func (r *Receiver) export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	res, err := r.Apply(ctx, req.Logs())
	if err != nil {
		return plogotlp.NewExportResponse(), err
	}
	resp := plogotlp.NewExportResponse()
	if msg := res.Message(); msg != "" {
		ps := resp.PartialSuccess()
		ps.SetRejectedLogRecords(int64(res.RejectedTotal()))
		ps.SetErrorMessage(msg)
	}
	if n := res.RejectedTotal(); n > 0 {
		r.log.Debug("OTLP export: records rejected", "received", res.Received, "rejected", n, "reasons", res.Message())
	}
	return resp, nil
}

// invalidInput reports whether err is a problem with the export's content,
// which retrying cannot fix (rather than an unavailable store).
func invalidInput(err error) bool {
	var ve *model.ValidationError
	var ce *ingest.ConflictError
	return errors.As(err, &ve) || errors.As(err, &ce)
}
