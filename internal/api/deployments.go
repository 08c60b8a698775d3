package api

import (
	"net/http"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// postDeployments stores Deployment reports (the original system's way for
// custom agents to report): each names a reconciler the hub knows, and its
// host by the hub.kalypso.io/host label unless only one host has it.
func (s *Server) postDeployments(w http.ResponseWriter, r *http.Request) {
	docs, err := decodeDocuments[v1alpha1.Deployment](r, resource.KindDeployment)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	reps := make([]model.DeploymentReport, len(docs))
	var invalid model.ValidationError
	for i := range docs {
		rep, err := resource.Deployment(&docs[i])
		if err != nil {
			if err := itemErrors(&invalid, i, len(docs), err); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		reps[i] = rep
	}
	if err := invalid.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	outs, err := s.ingest.ApplyDeployments(r.Context(), reps)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := PushResult{Items: make([]PushItem, 0, len(outs))}
	for i, o := range outs {
		res.Items = append(res.Items, PushItem{Name: o.Host + "/" + reps[i].Reconciler, Changed: o.Changed})
	}
	writeJSON(w, http.StatusOK, res)
}
