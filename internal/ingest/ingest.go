// Package ingest turns inputs from every source (the Kubernetes
// controller, the HTTP API, pollers, agents) into stored state and applies
// the correlation rules that relate desired and real state (resolve.go).
// Sources and controllers call ingest; ingest calls the store.
//
// Every input carries its own time where it can (a report's observedAt,
// an assignment's assignedAt): once the same inputs have all arrived, the
// stored state is the same whatever order they came in, because every
// resolution is recomputed from all the inputs it depends on whenever one of
// them changes. See the README ("Arrival order") for the orders that still
// matter and why.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/store"
)

// DefaultHeartbeat is how stale a reconciler's last-report time may get
// before a report refreshes it: the time is kept to this precision.
// Unchanged reports within it cost no writes, and a changed one leaves the
// time as it is, so that PostgreSQL rewrites the reconciler's row in place
// (its last-report time is indexed, for stale hosts).
const DefaultHeartbeat = time.Minute

// Service ingests descriptors and reports.
type Service struct {
	store     *store.Store
	now       func() time.Time
	heartbeat time.Duration
	log       *slog.Logger
	seen      *seenReports
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the source of "now" (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithHeartbeat sets DefaultHeartbeat's replacement.
func WithHeartbeat(d time.Duration) Option { return func(s *Service) { s.heartbeat = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns a Service writing to st.
func New(st *store.Store, opts ...Option) *Service {
	s := &Service{store: st, now: time.Now, heartbeat: DefaultHeartbeat, log: slog.Default(), seen: newSeenReports()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ConflictError is an input that contradicts what is stored, such as a
// version re-published with another build. Nothing of it is stored.
type ConflictError struct {
	Field   string
	Problem string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Problem }

// InputError is the error of one input of a Batch: which kind, and its
// index among the inputs of that kind. Nothing of the batch was stored.
type InputError struct {
	Kind  string // "descriptor", "report" or "retire"
	Index int
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("%s %d: %v", e.Kind, e.Index, e.Err) }
func (e *InputError) Unwrap() error { return e.Err }

// Batch is inputs stored together, in one transaction: all of them or, when
// one is invalid or conflicts with what is stored, none. Descriptors apply
// in order per target, reports in order per reconciler.
type Batch struct {
	Descriptors []model.Descriptor
	Reports     []model.Report
	// Retire lists reconcilers that stop counting as hosts of their
	// targets (see RetireReconciler).
	Retire []model.ReconcilerKey
}

// Result says what each input of a Batch became, in the batch's order.
type Result struct {
	Descriptors []DescriptorResult
	Reports     []ReportResult
	// Retired is true for each reconciler to retire that was live.
	Retired []bool
}

// DescriptorResult says what a descriptor became.
type DescriptorResult struct {
	AssignmentID int64
	// Commit is the GitOps commit of the assignment; empty while pending.
	Commit string
	// Changed is false when the descriptor was already stored as it is.
	Changed bool
}

// ReportResult says what a report changed.
type ReportResult struct {
	// Changed is false when the report repeated what was stored: nothing
	// was written.
	Changed bool

	reconciler int64 // its reconciler's id
}

// Apply stores a batch in one transaction: every input or none. Inputs are
// checked first (model's Check): an invalid one is an *InputError wrapping
// a *model.ValidationError; one that contradicts the store wraps a
// *ConflictError.
func (s *Service) Apply(ctx context.Context, b Batch) (Result, error) {
	b, err := check(b)
	if err != nil {
		return Result{}, err
	}
	now := s.now().UTC()
	x := indexReports(b.Reports)
	digests, reports := s.seen.digests(b.Reports, x.endpoints)
	x.ids = s.seen.ids(digests)
	if len(b.Descriptors) == 0 && len(b.Retire) == 0 && !s.seen.changes(digests, reports) {
		// Replays are the common case: read first, write only changes.
		states, err := s.readReconcilers(ctx, s.store.Primary(), x.keys, x.ids, false)
		if err != nil {
			return Result{}, fmt.Errorf("read reconcilers: %w", err)
		}
		if s.allUnchanged(b.Reports, x, states, now) {
			ids := make([]int64, len(x.keys))
			for i, k := range x.keys {
				ids[i] = states[k].ID
			}
			s.seen.remember(digests, reports, ids)
			return Result{Reports: make([]ReportResult, len(b.Reports))}, nil
		}
	}
	var res Result
	err = s.store.Tx(ctx, func(q store.Querier) error {
		if len(b.Reports) == 0 {
			if err := store.GenericPlans(ctx, q, s.store.Engine()); err != nil {
				return err
			}
		}
		var err error
		res, err = s.apply(ctx, q, b, x, now)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	ids := make([]int64, len(res.Reports))
	for i, r := range res.Reports {
		ids[i] = r.reconciler
	}
	s.seen.remember(digests, reports, ids)
	return res, nil
}

// apply stores a checked batch inside transaction q (x: its reports'
// index).
func (s *Service) apply(ctx context.Context, q store.Querier, b Batch, x reportIndex, now time.Time) (Result, error) {
	res := Result{Descriptors: make([]DescriptorResult, len(b.Descriptors)), Reports: make([]ReportResult, len(b.Reports)),
		Retired: make([]bool, len(b.Retire))}
	rs := newResolver(s.store.Engine())
	for _, i := range byTarget(b.Descriptors) {
		r, err := s.applyDescriptor(ctx, q, b.Descriptors[i], now, rs)
		if err != nil {
			return res, &InputError{Kind: "descriptor", Index: i, Err: err}
		}
		res.Descriptors[i] = r
	}
	if err := s.applyReports(ctx, q, b.Reports, x, res.Reports, now, rs); err != nil {
		return res, err
	}
	for i, k := range b.Retire {
		id, was, err := store.RetireReconciler(ctx, q, k.Host, k.Name, now)
		if err != nil {
			return res, &InputError{Kind: "retire", Index: i, Err: fmt.Errorf("retire reconciler %s on host %s: %w", model.Quote(k.Name), model.Quote(k.Host), err)}
		}
		if id != 0 {
			rs.m.reconciler(id, was, true)
			rs.m.allAssignments(id)
		}
		res.Retired[i] = id != 0
	}
	if err := rs.run(ctx, q); err != nil {
		return res, err
	}
	return res, nil
}

// check validates every input of a batch, on copies, and returns the batch
// with names in their stored form.
func check(b Batch) (Batch, error) {
	var errs []error
	out := Batch{Descriptors: make([]model.Descriptor, len(b.Descriptors)), Reports: make([]model.Report, len(b.Reports)),
		Retire: make([]model.ReconcilerKey, len(b.Retire))}
	for i, d := range b.Descriptors {
		if err := d.Check(); err != nil {
			errs = append(errs, &InputError{Kind: "descriptor", Index: i, Err: err})
		}
		out.Descriptors[i] = d
	}
	for i, r := range b.Reports {
		if err := r.Check(); err != nil {
			errs = append(errs, &InputError{Kind: "report", Index: i, Err: err})
		}
		out.Reports[i] = r
	}
	for i, k := range b.Retire {
		var v model.ValidationError
		k.Host = v.Name("host", k.Host, true)
		k.Name = v.Name("reconciler", k.Name, true)
		if err := v.Err(); err != nil {
			errs = append(errs, &InputError{Kind: "retire", Index: i, Err: err})
		}
		out.Retire[i] = k
	}
	return out, errors.Join(errs...)
}

// ApplyDescriptor stores one descriptor (see Apply).
func (s *Service) ApplyDescriptor(ctx context.Context, d model.Descriptor) (DescriptorResult, error) {
	res, err := s.Apply(ctx, Batch{Descriptors: []model.Descriptor{d}})
	if err != nil {
		return DescriptorResult{}, unwrapOne(err)
	}
	return res.Descriptors[0], nil
}

// ApplyReport stores one report (see Apply).
//
// A report that repeats the stored state writes nothing, unless the
// reconciler's last-report time is older than the heartbeat; then only that
// time moves. A report for a commit the hub cannot place is stored all the
// same, and shows as an unknown version.
func (s *Service) ApplyReport(ctx context.Context, r model.Report) (ReportResult, error) {
	res, err := s.Apply(ctx, Batch{Reports: []model.Report{r}})
	if err != nil {
		return ReportResult{}, unwrapOne(err)
	}
	return res.Reports[0], nil
}

// ApplyReports stores many reports in one transaction (see Apply).
func (s *Service) ApplyReports(ctx context.Context, rs []model.Report) ([]ReportResult, error) {
	res, err := s.Apply(ctx, Batch{Reports: rs})
	return res.Reports, err
}

// unwrapOne drops the InputError of a batch of one: its index says nothing.
func unwrapOne(err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Err
	}
	return err
}

// RetireReconciler stops counting a reconciler as a host of its target (its
// resource was deleted or it vanished from its source). Its history stays; a
// later report brings it back. It reports whether it was live.
func (s *Service) RetireReconciler(ctx context.Context, host, name string) (bool, error) {
	res, err := s.Apply(ctx, Batch{Retire: []model.ReconcilerKey{{Host: host, Name: name}}})
	if err != nil {
		return false, unwrapOne(err)
	}
	return res.Retired[0], nil
}

// RetireMissing retires the live reconcilers that source reported and
// that are not in present: they vanished from the source (an Azure
// Resource Graph poll, an agent's full resync). It returns the retired
// ones. Their history stays; a later report brings them back.
func (s *Service) RetireMissing(ctx context.Context, source string, present []model.ReconcilerKey) ([]model.ReconcilerKey, error) {
	if source == "" {
		return nil, fmt.Errorf("retire missing reconcilers: the source is empty")
	}
	keep := make(map[model.ReconcilerKey]bool, len(present))
	for _, k := range present {
		keep[model.ReconcilerKey{Host: model.NormalizeName(k.Host), Name: model.NormalizeName(k.Name)}] = true
	}
	var retired []model.ReconcilerKey
	err := s.store.Tx(ctx, func(q store.Querier) error {
		retired = nil
		rs := newResolver(s.store.Engine())
		live, err := store.SourceReconcilers(ctx, q, source)
		if err != nil {
			return fmt.Errorf("list reconcilers of source %s: %w", model.Quote(source), err)
		}
		now := s.now().UTC()
		for _, l := range live {
			if keep[l.Key] {
				continue
			}
			was, ok, err := store.RetireReconcilerID(ctx, q, l.ID, now)
			if err != nil {
				return fmt.Errorf("retire reconciler %s on host %s: %w", model.Quote(l.Key.Name), model.Quote(l.Key.Host), err)
			}
			if ok {
				retired = append(retired, l.Key)
				rs.m.reconciler(l.ID, was, true)
				rs.m.allAssignments(l.ID)
			}
		}
		return rs.run(ctx, q)
	})
	return retired, err
}

// ApplyAzureResourceGraph stores a poller configuration pushed through the
// API: its name and its spec as JSON (validated by the caller). It reports
// whether anything changed.
func (s *Service) ApplyAzureResourceGraph(ctx context.Context, name string, specJSON []byte) (bool, error) {
	var changed bool
	err := s.store.Tx(ctx, func(q store.Querier) error {
		var err error
		changed, err = store.UpsertAzureResourceGraph(ctx, q, name, string(specJSON), s.now().UTC())
		return err
	})
	return changed, err
}
