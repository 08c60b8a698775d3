package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/metrics"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// A push request body is one document, a JSON array of documents, or a
// Kubernetes list ({"kind": "List", "items": [...]}), exactly as
// `kubectl get -o json` prints them. A push is all or nothing: its
// documents are stored in one transaction, or, when one is invalid or
// conflicts with what is stored, none is.

// PushResult is the answer to a push: one entry per document, in order.
type PushResult struct {
	Items []PushItem `json:"items"`
}

// PushItem says what one document became.
type PushItem struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Changed bool   `json:"changed"`
	// Commit is the GitOps commit of a descriptor's assignment; empty while
	// it is pending.
	Commit string `json:"commit,omitempty"`
	// Pending is true for a descriptor whose commit is not known yet.
	Pending bool `json:"pending,omitempty"`
}

// pushEndpoint is the route that takes each kind alone, for the hint of
// an error naming a kind sent to the wrong route.
var pushEndpoint = map[string]string{
	resource.KindDeploymentDescriptor: "/api/v1/deploymentdescriptors",
	resource.KindReconciler:           "/api/v1/reconcilers",
	resource.KindAzureResourceGraph:   "/api/v1/azureresourcegraphs",
	resource.KindDeployment:           "/api/v1/deployments",
}

// pushDoc is one decoded, validated document of a push.
type pushDoc struct {
	kind string
	// name is metadata.name; for a Reconciler, host/reconciler.
	name string
	// The document converted: the field of its kind is set.
	resource.Decoded
}

// pushBody is the documents of a push. list is true for an array or a
// List: field paths in errors then start with items[i].
type pushBody struct {
	docs []pushDoc
	list bool
}

// decodePush reads and validates a push body whose documents are of the
// given kinds. With one kind, a document may leave out apiVersion and
// kind. The error is a *badRequest when the body cannot be read as JSON,
// else names every invalid field of every document (each an *itemError).
func decodePush(r io.Reader, kinds ...string) (pushBody, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return pushBody{}, err
	}
	if p := bodyTextProblem(body); p != "" {
		return pushBody{}, &badRequest{"the request body " + p}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return pushBody{}, &badRequest{"the request body is empty: send " + strings.Join(kinds, " or ") + " documents as JSON: one, an array, or a List"}
	}
	var raws []json.RawMessage
	list := true
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return pushBody{}, &badRequest{"the body is not a JSON array of documents: " + jsonProblem(err)}
		}
	} else {
		if body[0] != '{' {
			return pushBody{}, &badRequest{"the body is not a JSON object or array: send " + strings.Join(kinds, " or ") + " documents as JSON: one, an array, or a List"}
		}
		var l struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return pushBody{}, &badRequest{"the body is not a JSON document: " + jsonProblem(err)}
		}
		if l.Kind == "List" || (strings.HasSuffix(l.Kind, "List") && slices.Contains(kinds, strings.TrimSuffix(l.Kind, "List"))) {
			raws = l.Items
		} else {
			raws, list = []json.RawMessage{body}, false
		}
	}
	b := pushBody{docs: make([]pushDoc, len(raws)), list: list}
	var errs []error
	for i, raw := range raws {
		d, err := decodeDocument(raw, kinds)
		if err != nil {
			errs = append(errs, &itemError{index: i, name: d.name, list: list, err: err})
		}
		b.docs[i] = d
	}
	return b, errors.Join(errs...)
}

// jsonProblem is a decoding error with the byte it happened at.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (byte %d)", err, se.Offset)
	}
	return err.Error()
}

// decodeDocument decodes and validates one document of a push. Its errors
// are *model.ValidationError.
func decodeDocument(raw json.RawMessage, kinds []string) (pushDoc, error) {
	var v model.ValidationError
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		v.Add("", "is not a JSON object: send hub.kalypso.io/v1alpha1 resources")
		return pushDoc{}, &v
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := decodeFields(raw, &meta); err != nil {
		return pushDoc{}, err
	}
	d := pushDoc{kind: meta.Kind, name: meta.Metadata.Name}
	if d.kind == "" && len(kinds) == 1 {
		d.kind = kinds[0]
	}
	if !slices.Contains(kinds, d.kind) {
		if d.kind == "" {
			v.Add("kind", "is required: one of %s", strings.Join(kinds, ", "))
		} else if route, known := pushEndpoint[d.kind]; known {
			v.Add("kind", "%s is not accepted here (expected %s): POST it to %s", model.Quote(d.kind), strings.Join(kinds, " or "), route)
		} else {
			v.Add("kind", "%s is not accepted here: expected %s", model.Quote(d.kind), strings.Join(kinds, " or "))
		}
		return d, &v
	}
	if err := resource.CheckTypeMeta(meta.APIVersion, d.kind, d.kind); err != nil {
		return d, err
	}
	var err error
	if d.Decoded, err = resource.Decode(d.kind, raw, decodeFields); err != nil {
		return d, err
	}
	switch d.kind {
	case resource.KindReconciler:
		d.name = d.Report.Host + "/" + d.Report.Reconciler
	case resource.KindAzureResourceGraph:
		r := d.AzureResourceGraph
		// Its spec is stored as JSON: every string in it must be text.
		if p := model.NameProblem(r.Name); p != "" {
			v.Add("metadata.name", "%s", p)
		}
		spec, err := json.Marshal(r.Spec)
		if err != nil {
			return d, err
		}
		var x any
		if err := json.Unmarshal(spec, &x); err != nil {
			return d, err
		}
		checkJSONText(&v, "spec", x)
		return d, v.Err()
	}
	return d, nil
}

// decodeFields decodes a document, turning a value of the wrong JSON type
// into a *model.ValidationError naming the field.
func decodeFields(raw []byte, dst any) error {
	err := json.Unmarshal(raw, dst)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		var v model.ValidationError
		v.Add(te.Field, "must be a JSON %s, not %s", jsonType(te.Type.Kind().String()), te.Value)
		return &v
	}
	return err
}

// jsonType names a Go kind the way JSON does.
func jsonType(kind string) string {
	switch kind {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	case "string":
		return "string"
	}
	return "number"
}

// byDocument replaces the *ingest.InputError of a batch built from b's
// documents with the *itemError of the document each comes from; index
// maps an input kind ("descriptor", "report") and its index in the batch
// to the document's index in b.
func (b pushBody) byDocument(err error, index map[string][]int) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, b.byDocument(e, index))
		}
		return errors.Join(errs...)
	}
	var ie *ingest.InputError
	if errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(index[ie.Kind]) {
		i := index[ie.Kind][ie.Index]
		return &itemError{index: i, name: b.docs[i].name, list: b.list, err: ie.Err}
	}
	return err
}

// applyDocuments stores the descriptors and reports of b in one ingest
// batch: all of them, or none.
func (s *Server) applyDocuments(ctx context.Context, b pushBody) (PushResult, error) {
	res := PushResult{Items: make([]PushItem, len(b.docs))}
	if len(b.docs) == 0 {
		return res, nil
	}
	var batch ingest.Batch
	index := map[string][]int{}
	for i, d := range b.docs {
		switch d.kind {
		case resource.KindDeploymentDescriptor:
			batch.Descriptors = append(batch.Descriptors, d.Descriptor)
			index["descriptor"] = append(index["descriptor"], i)
		case resource.KindReconciler:
			batch.Reports = append(batch.Reports, d.Report)
			index["report"] = append(index["report"], i)
		default:
			return res, fmt.Errorf("document %d: kind %s cannot be stored in a batch", i, d.kind)
		}
	}
	out, err := s.ingest.Apply(ctx, batch)
	if err != nil {
		return res, b.byDocument(err, index)
	}
	for k, i := range index["descriptor"] {
		o := out.Descriptors[k]
		res.Items[i] = PushItem{Kind: b.docs[i].kind, Name: b.docs[i].name, Changed: o.Changed, Commit: o.Commit, Pending: o.Commit == ""}
	}
	for k, i := range index["report"] {
		res.Items[i] = PushItem{Kind: b.docs[i].kind, Name: b.docs[i].name, Changed: out.Reports[k].Changed}
	}
	return res, nil
}

// push decodes a push of the given kinds and stores it in one transaction.
func (s *Server) push(w http.ResponseWriter, r *http.Request, kinds ...string) {
	start := time.Now()
	b, err := decodePush(r.Body, kinds...)
	if err != nil {
		s.recordPush(r, kinds[0], b, start, nil, err)
		s.writeError(w, r, err)
		return
	}
	if slices.Contains(kinds, resource.KindReconciler) {
		// ?source= names what reports these reconcilers (an agent, a
		// poller), so that it can later retire the ones it no longer sees.
		source, err := sourceParam(r)
		if err != nil {
			s.recordPush(r, kinds[0], b, start, nil, err)
			s.writeError(w, r, err)
			return
		}
		for i := range b.docs {
			b.docs[i].Report.Source = source
		}
	}
	res, err := s.applyDocuments(r.Context(), b)
	s.recordPush(r, kinds[0], b, start, res.Items, err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// recordPush counts a push request's documents in the ingest metrics, by
// kind: stored (applied or unchanged, from the answer's items) when err is
// nil, else rejected or failed by err's reason, all of them (a push is all
// or nothing). A body that could not be read counts as one document of
// the route's first kind.
func (s *Server) recordPush(r *http.Request, route string, b pushBody, start time.Time, items []PushItem, err error) {
	if s.metrics == nil {
		return
	}
	m := s.metrics.Ingest
	total := map[string]int{}
	for _, d := range b.docs {
		total[cmp.Or(d.kind, route)]++
	}
	if len(b.docs) == 0 && err != nil {
		total[route] = 1
	}
	if err != nil {
		// The documents err names failed for its reason; the others of
		// the request were not stored because of them (aborted). When err
		// names none, all failed for its reason.
		outcome, reason := pushFailure(r, err)
		failed := map[int]bool{}
		for _, ie := range itemErrorsOf(err) {
			failed[ie.index] = true
		}
		if len(failed) == 0 {
			for kind, n := range total {
				m.Record(kind, metrics.SourceAPI, outcome, reason, n)
			}
		} else {
			for i, d := range b.docs {
				kind := cmp.Or(d.kind, route)
				if failed[i] {
					m.Record(kind, metrics.SourceAPI, outcome, reason, 1)
				} else {
					m.Record(kind, metrics.SourceAPI, metrics.OutcomeRejected, metrics.ReasonAborted, 1)
				}
			}
		}
	} else {
		applied := map[string]int{}
		for _, it := range items {
			if it.Changed {
				applied[it.Kind]++
			}
		}
		for kind, n := range total {
			m.Record(kind, metrics.SourceAPI, metrics.OutcomeApplied, "", applied[kind])
			m.Record(kind, metrics.SourceAPI, metrics.OutcomeUnchanged, "", n-applied[kind])
		}
	}
	for kind, n := range total {
		m.Observe(kind, metrics.SourceAPI, n, time.Since(start))
	}
}

// itemErrorsOf lists the documents' errors that err joins.
func itemErrorsOf(err error) []*itemError {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*itemError
		for _, e := range joined.Unwrap() {
			out = append(out, itemErrorsOf(e)...)
		}
		return out
	}
	if ie, ok := err.(*itemError); ok {
		return []*itemError{ie}
	}
	return nil
}

// pushFailure names what became of the documents err stopped, as
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

// postDescriptors stores DeploymentDescriptors.
func (s *Server) postDescriptors(w http.ResponseWriter, r *http.Request) {
	s.push(w, r, resource.KindDeploymentDescriptor)
}

// postReconcilers stores Reconciler reports.
func (s *Server) postReconcilers(w http.ResponseWriter, r *http.Request) {
	s.push(w, r, resource.KindReconciler)
}

// postApply stores DeploymentDescriptors and Reconcilers together.
func (s *Server) postApply(w http.ResponseWriter, r *http.Request) {
	s.push(w, r, resource.KindDeploymentDescriptor, resource.KindReconciler)
}

// deleteReconciler retires a reconciler: it stops counting as a host of its
// target; its history stays.
func (s *Server) deleteReconciler(w http.ResponseWriter, r *http.Request) {
	host, name := r.PathValue("host"), r.PathValue("name")
	var problems []ProblemField
	for _, p := range []struct{ param, value string }{{"host", host}, {"name", name}} {
		switch {
		case model.NameProblem(p.value) != "":
			problems = append(problems, ProblemField{Field: p.param, Problem: model.NameProblem(p.value)})
		case model.NormalizeName(p.value) == "":
			problems = append(problems, ProblemField{Field: p.param, Problem: "is empty"})
		}
	}
	if len(problems) > 0 {
		writeProblem(w, r, Problem{Type: problemBase + "invalid-query", Title: "Invalid path", Status: http.StatusBadRequest,
			Detail: "Name a host and one of its reconcilers.", Errors: problems})
		return
	}
	retired, err := s.ingest.RetireReconciler(r.Context(), host, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !retired {
		writeProblem(w, r, Problem{Title: "Not found", Status: http.StatusNotFound,
			Detail: fmt.Sprintf("host %s has no live reconciler %s", model.Quote(host), model.Quote(name))})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postAzureResourceGraphs stores Azure Resource Graph poller
// configurations. Every document is validated before any is stored.
func (s *Server) postAzureResourceGraphs(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	b, err := decodePush(r.Body, resource.KindAzureResourceGraph)
	if err != nil {
		s.recordPush(r, resource.KindAzureResourceGraph, b, start, nil, err)
		s.writeError(w, r, err)
		return
	}
	res := PushResult{Items: make([]PushItem, 0, len(b.docs))}
	for i, d := range b.docs {
		spec, err := json.Marshal(d.AzureResourceGraph.Spec)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		changed, err := s.ingest.ApplyAzureResourceGraph(r.Context(), d.AzureResourceGraph.Name, spec)
		if err != nil {
			// The documents before this one are stored: count them so.
			s.recordPush(r, resource.KindAzureResourceGraph, pushBody{docs: b.docs[:i]}, start, res.Items, nil)
			s.recordPush(r, resource.KindAzureResourceGraph, pushBody{docs: b.docs[i:]}, start, nil, err)
			s.writeError(w, r, &itemError{index: i, name: d.name, list: b.list, err: err})
			return
		}
		res.Items = append(res.Items, PushItem{Kind: d.kind, Name: d.name, Changed: changed})
	}
	s.recordPush(r, resource.KindAzureResourceGraph, b, start, res.Items, nil)
	writeJSON(w, http.StatusOK, res)
}
