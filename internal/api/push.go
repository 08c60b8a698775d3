package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// A push request body is one document, a JSON array of documents, or a
// Kubernetes list ({"kind": "...List", "items": [...]}), exactly as
// `kubectl get -o json` prints them.

// PushResult is the answer to a push: one entry per document, in order.
type PushResult struct {
	Items []PushItem `json:"items"`
}

// PushItem says what one document became.
type PushItem struct {
	Name    string `json:"name"`
	Changed bool   `json:"changed"`
	// Commit is the GitOps commit of a descriptor's assignment; empty while
	// it is pending.
	Commit string `json:"commit,omitempty"`
	// Pending is true for a descriptor whose commit is not known yet.
	Pending bool `json:"pending,omitempty"`
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// decodeDocuments reads the body into documents of type T, checking that
// each is the expected kind.
func decodeDocuments[T any](r *http.Request, kind string) ([]T, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &badRequest{"the request body is empty: send a " + kind + " as JSON, an array of them, or a " + kind + "List"}
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, &badRequest{"the body is not a JSON array of documents: " + err.Error()}
		}
	} else {
		var list struct {
			typeMeta
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, &badRequest{"the body is not a JSON document: " + err.Error()}
		}
		if list.Kind == kind+"List" || list.Kind == "List" {
			raws = list.Items
		} else {
			raws = []json.RawMessage{body}
		}
	}
	docs := make([]T, len(raws))
	var invalid model.ValidationError
	for i, raw := range raws {
		var meta typeMeta
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, &badRequest{fmt.Sprintf("document %d is not a JSON object: %v", i, err)}
		}
		if err := resource.CheckTypeMeta(meta.APIVersion, meta.Kind, kind); err != nil {
			var ve *model.ValidationError
			errors.As(err, &ve)
			_ = itemErrors(&invalid, i, len(raws), ve)
			continue
		}
		if err := json.Unmarshal(raw, &docs[i]); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				field := model.ValidationError{}
				field.Add(te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
				_ = itemErrors(&invalid, i, len(raws), &field)
				continue
			}
			return nil, &badRequest{fmt.Sprintf("document %d: %v", i, err)}
		}
	}
	if err := invalid.Err(); err != nil {
		return nil, err
	}
	return docs, nil
}

// itemErrors adds a document's validation errors to all. In a request of
// several documents each field is prefixed with the document's index, so
// that the client knows which one is wrong. Other errors are returned.
func itemErrors(all *model.ValidationError, i, of int, err error) error {
	var ve *model.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	for _, f := range ve.Fields {
		if of > 1 {
			f.Field = fmt.Sprintf("items[%d].%s", i, f.Field)
		}
		all.Fields = append(all.Fields, f)
	}
	return nil
}

// postDescriptors stores DeploymentDescriptors. Every document is
// validated before any is stored: one invalid document rejects the request.
func (s *Server) postDescriptors(w http.ResponseWriter, r *http.Request) {
	const kind = resource.KindDeploymentDescriptor
	start := time.Now()
	docs, err := decodeDocuments[v1alpha1.DeploymentDescriptor](r, kind)
	if err != nil {
		s.recordPush(r, kind, start, nil, 1, 1, err)
		s.writeError(w, r, err)
		return
	}
	ds := make([]model.Descriptor, len(docs))
	var invalid model.ValidationError
	for i := range docs {
		d, err := resource.Descriptor(&docs[i], resource.FluxApplied{})
		if err != nil {
			if err := itemErrors(&invalid, i, len(docs), err); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		ds[i] = d
	}
	if err := invalid.Err(); err != nil {
		s.recordPush(r, kind, start, nil, len(docs), len(docs), err)
		s.writeError(w, r, err)
		return
	}
	res := PushResult{Items: make([]PushItem, 0, len(ds))}
	changed := make([]bool, 0, len(ds))
	for i, d := range ds {
		out, err := s.ingest.ApplyDescriptor(r.Context(), d)
		if err != nil {
			s.recordPush(r, kind, start, changed, len(ds), 1, err)
			s.writeError(w, r, fmt.Errorf("document %d (%s): %w", i, docs[i].Name, err))
			return
		}
		changed = append(changed, out.Changed)
		res.Items = append(res.Items, PushItem{Name: docs[i].Name, Changed: out.Changed, Commit: out.Commit, Pending: out.Commit == ""})
	}
	s.recordPush(r, kind, start, changed, len(ds), 0, nil)
	writeJSON(w, http.StatusOK, res)
}

// postReconcilers stores Reconciler reports.
func (s *Server) postReconcilers(w http.ResponseWriter, r *http.Request) {
	const kind = resource.KindReconciler
	start := time.Now()
	docs, err := decodeDocuments[v1alpha1.Reconciler](r, kind)
	if err != nil {
		s.recordPush(r, kind, start, nil, 1, 1, err)
		s.writeError(w, r, err)
		return
	}
	reps := make([]model.Report, len(docs))
	var invalid model.ValidationError
	for i := range docs {
		rep, err := resource.Report(&docs[i])
		if err != nil {
			if err := itemErrors(&invalid, i, len(docs), err); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		reps[i] = rep
	}
	if err := invalid.Err(); err != nil {
		s.recordPush(r, kind, start, nil, len(docs), len(docs), err)
		s.writeError(w, r, err)
		return
	}
	outs, err := s.ingest.ApplyReports(r.Context(), reps)
	if err != nil {
		s.recordPush(r, kind, start, nil, len(reps), len(reps), err)
		s.writeError(w, r, err)
		return
	}
	res := PushResult{Items: make([]PushItem, 0, len(reps))}
	changed := make([]bool, len(reps))
	for i, rep := range reps {
		changed[i] = outs[i].Changed
		res.Items = append(res.Items, PushItem{Name: rep.Host + "/" + rep.Reconciler, Changed: outs[i].Changed})
	}
	s.recordPush(r, kind, start, changed, len(reps), 0, nil)
	writeJSON(w, http.StatusOK, res)
}

// deleteReconciler retires a reconciler: it stops counting as a host of its
// target; its history stays.
func (s *Server) deleteReconciler(w http.ResponseWriter, r *http.Request) {
	retired, err := s.ingest.RetireReconciler(r.Context(), r.PathValue("host"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !retired {
		writeProblem(w, r, Problem{Title: "Not found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("host %q has no live reconciler %q", r.PathValue("host"), r.PathValue("name"))})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postAzureResourceGraphs stores Azure Resource Graph poller
// configurations.
func (s *Server) postAzureResourceGraphs(w http.ResponseWriter, r *http.Request) {
	const kind = resource.KindAzureResourceGraph
	start := time.Now()
	docs, err := decodeDocuments[v1alpha1.AzureResourceGraph](r, kind)
	if err != nil {
		s.recordPush(r, kind, start, nil, 1, 1, err)
		s.writeError(w, r, err)
		return
	}
	var invalid model.ValidationError
	for i := range docs {
		if err := itemErrors(&invalid, i, len(docs), resource.ValidateAzureResourceGraph(&docs[i])); err != nil {
			s.recordPush(r, kind, start, nil, len(docs), len(docs), err)
			s.writeError(w, r, err)
			return
		}
	}
	if err := invalid.Err(); err != nil {
		s.recordPush(r, kind, start, nil, len(docs), len(docs), err)
		s.writeError(w, r, err)
		return
	}
	res := PushResult{Items: make([]PushItem, 0, len(docs))}
	done := make([]bool, 0, len(docs))
	for _, d := range docs {
		spec, err := json.Marshal(d.Spec)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		changed, err := s.ingest.ApplyAzureResourceGraph(r.Context(), d.Name, spec)
		if err != nil {
			s.recordPush(r, kind, start, done, len(docs), 1, err)
			s.writeError(w, r, err)
			return
		}
		done = append(done, changed)
		res.Items = append(res.Items, PushItem{Name: d.Name, Changed: changed})
	}
	s.recordPush(r, kind, start, done, len(docs), 0, nil)
	writeJSON(w, http.StatusOK, res)
}

// recordPush counts a push request's documents in the ingest metrics. done
// says, for the documents stored, whether each changed anything; when err
// stopped the request, failed more documents count by err's reason and the
// rest of the total as aborted.
func (s *Server) recordPush(r *http.Request, kind string, start time.Time, done []bool, total, failed int, err error) {
	if s.metrics == nil {
		return
	}
	m := s.metrics.Ingest
	applied := 0
	for _, c := range done {
		if c {
			applied++
		}
	}
	m.Record(kind, metrics.SourceAPI, metrics.OutcomeApplied, "", applied)
	m.Record(kind, metrics.SourceAPI, metrics.OutcomeUnchanged, "", len(done)-applied)
	if err != nil {
		outcome, reason := pushFailure(r, err)
		m.Record(kind, metrics.SourceAPI, outcome, reason, failed)
		m.Record(kind, metrics.SourceAPI, metrics.OutcomeRejected, metrics.ReasonAborted, total-len(done)-failed)
	}
	m.Observe(kind, metrics.SourceAPI, total, time.Since(start))
}

// pushFailure names what became of a document that err stopped, as
// writeError answers it: bad input is rejected, anything else failed.
func pushFailure(r *http.Request, err error) (outcome, reason string) {
	var ve *model.ValidationError
	var ce *ingest.ConflictError
	var tooBig *http.MaxBytesError
	var bad *badRequest
	switch {
	case errors.As(err, &ve):
		return metrics.OutcomeRejected, metrics.ReasonInvalid
	case errors.As(err, &ce):
		return metrics.OutcomeRejected, metrics.ReasonConflict
	case errors.As(err, &tooBig), errors.As(err, &bad):
		return metrics.OutcomeRejected, metrics.ReasonMalformed
	case r.Context().Err() != nil:
		return metrics.OutcomeFailed, metrics.ReasonCanceled
	}
	return metrics.OutcomeFailed, metrics.ReasonStore
}
