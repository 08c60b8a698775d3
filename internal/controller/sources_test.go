package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/controller"
	"github.com/tidemark-dev/tidemark/internal/sources/arg"
	"github.com/tidemark-dev/tidemark/internal/testenv"
)

// fakeGraph is Azure Resource Graph as the SDK's fake server: Flux
// configurations by subscription.
type fakeGraph struct {
	mu   sync.Mutex
	rows map[string][]any
}

func (g *fakeGraph) set(sub string, rows ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rows[sub] = rows
}

func (g *fakeGraph) server() *fake.Server {
	return &fake.Server{Resources: func(_ context.Context, q armresourcegraph.QueryRequest, _ *armresourcegraph.ClientResourcesOptions) (resp azfake.Responder[armresourcegraph.ClientResourcesResponse], errResp azfake.ErrorResponder) {
		g.mu.Lock()
		defer g.mu.Unlock()
		var data []any
		for _, s := range q.Subscriptions {
			data = append(data, g.rows[*s]...)
		}
		n := int64(len(data))
		resp.SetResponse(http.StatusOK, armresourcegraph.ClientResourcesResponse{QueryResponse: armresourcegraph.QueryResponse{
			Count: &n, TotalRecords: &n, Data: data}}, nil)
		return
	}}
}

// fluxConfig is an Arc cluster's Flux configuration applying target's
// manifests (as descriptor() writes them) at commit.
func fluxConfig(sub, cluster, target, commit string) any {
	var row any
	_ = json.Unmarshal([]byte(fmt.Sprintf(`{
		"id": "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/%s/providers/Microsoft.KubernetesConfiguration/fluxConfigurations/gitops",
		"name": "gitops",
		"properties": {
			"sourceKind": "GitRepository",
			"gitRepository": {"url": "https://github.com/kaizentm/hello-world-gitops", "repositoryRef": {"branch": "dev"}},
			"kustomizations": {"%s": {"path": "./%s"}},
			"sourceSyncedCommitId": "dev@sha1:%s",
			"complianceState": "Compliant"
		}}`, sub, cluster, target, target, commit)), &row)
	return row
}

// secretCredentials checks that each configuration's credential comes
// from its own Secret, read through the controller's Secret reader.
type secretCredentials struct {
	secrets arg.SecretReader
	mu      sync.Mutex
	clients map[string]string // configuration -> client id used
}

func (s *secretCredentials) Credential(ctx context.Context, c arg.Config) (azcore.TokenCredential, error) {
	sp, err := s.secrets(ctx, c.Namespace, c.SecretRef)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.clients[c.Key()] = sp.ClientID
	s.mu.Unlock()
	return &azfake.TokenCredential{}, nil
}

// TestAzureResourceGraphPolling runs the controller's pollers against the
// SDK's fake server: an AzureResourceGraph with a service principal Secret
// is polled, its status shows the poll, its reconcilers reach the store,
// and deleting it retires them.
func TestAzureResourceGraphPolling(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	graph := &fakeGraph{rows: map[string][]any{}}
	graph.set("sub-1", fluxConfig("sub-1", "Arc-East-1", "functional-test", shaA), fluxConfig("sub-1", "arc-east-2", "functional-test", shaA))
	creds := &secretCredentials{clients: map[string]string{}}
	h := startController(t, st, func(o *controller.Options, cfg *rest.Config) {
		m, err := arg.NewManager(arg.Options{Ingest: o.Ingest, Credentials: creds, Logger: quietLogger(),
			ClientOptions: arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: fake.NewServerTransport(graph.server())}}})
		if err != nil {
			t.Fatal(err)
		}
		o.Pollers = m
		creds.secrets = controller.SecretReader(newClient(t, cfg))
	})
	ctx := context.Background()
	create(t, h.c, descriptor(h.ns, "dd", "functional-test", "0.0.1"))
	h.waitDescriptor(t, h.ns, "dd", controller.ReasonCommitPending)
	create(t, h.c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "sp"},
		Data: map[string][]byte{"AZURE_CLIENT_ID": []byte("client-1"), "AZURE_CLIENT_SECRET": []byte("s3cret")}})
	create(t, h.c, &v1alpha1.AzureResourceGraph{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "fleet"},
		Spec: v1alpha1.AzureResourceGraphSpec{Subscription: "sub-1", Tenant: "t", SecretRef: "sp", Interval: "5s"}})

	a := h.waitARG(t, h.ns, "fleet", controller.ReasonPolled)
	if a.Status.LastPoll == nil || a.Status.LastPoll.Reconcilers != 2 || a.Status.LastPollTime == nil || strings.Contains(mustJSON(t, a.Status), "s3cret") {
		t.Errorf("status after the first poll: %+v", a.Status)
	}
	if creds.clients[h.ns+"/fleet"] != "client-1" {
		t.Errorf("credential from client %q, want the Secret's client-1", creds.clients[h.ns+"/fleet"])
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		rows := hostTargets(t, st)
		return len(rows) == 2 && rows[0].Host == "arc-east-1" && rows[0].Reconciler == "gitops/functional-test", fmt.Sprintf("host state %+v", rows)
	})

	// A cluster leaves: the next poll retires its reconciler.
	graph.set("sub-1", fluxConfig("sub-1", "arc-east-2", "functional-test", shaA))
	eventually(t, 30*time.Second, func() (bool, string) {
		rows := hostTargets(t, st)
		return len(rows) == 1 && rows[0].Host == "arc-east-2", fmt.Sprintf("host state %+v", rows)
	})

	// Deleting the resource stops the poller and retires the rest.
	if err := h.c.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	h.waitGone(t, a)
	if rows := hostTargets(t, st); len(rows) != 0 {
		t.Errorf("reconcilers of a deleted AzureResourceGraph still live: %+v", rows)
	}

	// An invalid one is not polled and says why.
	create(t, h.c, &v1alpha1.AzureResourceGraph{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "bad"},
		Spec: v1alpha1.AzureResourceGraphSpec{Subscription: "sub-1", Tenant: "t", SecretRef: "sp", ManagedIdentity: "mi"}})
	h.waitARG(t, h.ns, "bad", controller.ReasonInvalidSpec)
}

// TestDeploymentResource stores the original's Deployment resource for a
// registered reconciler, and refuses an ambiguous name until it is
// labelled with its host.
func TestDeploymentResource(t *testing.T) {
	st := testenv.NewStore(t, "sqlite")
	h := startController(t, st)
	ctx := context.Background()
	create(t, h.c, descriptor(h.ns, "dd", "functional-test", "0.0.1"))
	for _, host := range []string{"vm-1", "vm-2"} {
		r := reconciler(h.ns, "agent-"+host, host, "functional-test", shaA, "success")
		r.Spec.ReconcilerName, r.Spec.Deployment = "agent", nil // registered, not yet reported
		create(t, h.c, r)
		h.waitReconciler(t, h.ns, "agent-"+host, controller.ReasonStored)
	}
	dep := &v1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "vm-1-report"},
		Spec: v1alpha1.DeploymentSpec{ReconcilerName: "agent", GitOpsCommitID: shaA, Status: "failure", StatusMessage: "disk full"}}
	create(t, h.c, dep)
	d := waitDeployment(t, h, "vm-1-report", controller.ReasonConflict)
	if c := ready(d.Status.Conditions, d.Generation); !strings.Contains(c.Message, v1alpha1.HostLabel) {
		t.Errorf("ambiguous reconciler: %q does not say to label the Deployment", c.Message)
	}
	d.Labels = map[string]string{v1alpha1.HostLabel: "vm-1"}
	if err := h.c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = waitDeployment(t, h, "vm-1-report", controller.ReasonStored)
	if d.Status.HostName != "vm-1" {
		t.Errorf("status.hostName %q", d.Status.HostName)
	}
	rows := hostTargets(t, st)
	if len(rows) != 2 || rows[0].Host != "vm-1" || rows[0].Status != "failure" || rows[0].Message != "disk full" || rows[0].Commit != shaA ||
		rows[1].Host != "vm-2" || rows[1].Status != "not_reported" {
		t.Errorf("host state: %+v", rows)
	}
}

func waitDeployment(t *testing.T, h *harness, name, reason string) *v1alpha1.Deployment {
	t.Helper()
	var d v1alpha1.Deployment
	eventually(t, 30*time.Second, func() (bool, string) {
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &d); err != nil {
			return false, err.Error()
		}
		c := ready(d.Status.Conditions, d.Generation)
		return c != nil && c.Reason == reason, "Deployment " + name + ": " + describe(c) + "; want reason " + reason
	})
	return &d
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
