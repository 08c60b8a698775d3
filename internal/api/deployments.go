package api

import (
	"net/http"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// postDeployments stores Deployment reports (the original system's way for
// custom agents to report): each names a reconciler the hub knows, and its
// host by the hub.kalypso.io/host label unless only one host has it. Like
// every push, all of them or none.
func (s *Server) postDeployments(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	b, err := decodePush(r.Body, resource.KindDeployment)
	if err != nil {
		s.recordPush(r, resource.KindDeployment, b, start, nil, err)
		s.writeError(w, r, err)
		return
	}
	reps := make([]model.DeploymentReport, len(b.docs))
	index := make([]int, len(b.docs))
	for i, d := range b.docs {
		reps[i], index[i] = d.Deployment, i
	}
	outs, err := s.ingest.ApplyDeployments(r.Context(), reps)
	if err != nil {
		s.recordPush(r, resource.KindDeployment, b, start, nil, err)
		s.writeError(w, r, b.byDocument(err, map[string][]int{"deployment": index, "report": index}))
		return
	}
	res := PushResult{Items: make([]PushItem, len(outs))}
	for i, o := range outs {
		res.Items[i] = PushItem{Kind: resource.KindDeployment, Name: o.Host + "/" + reps[i].Reconciler, Changed: o.Changed}
	}
	s.recordPush(r, resource.KindDeployment, b, start, res.Items, nil)
	writeJSON(w, http.StatusOK, res)
}
