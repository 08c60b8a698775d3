package testenv

import (
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// UserConfig returns a client configuration for a user of this control
// plane with the given groups and no other rights: the API server
// authorizes it through RBAC, as it would a workload's ServiceAccount.
func (k *Kube) UserConfig(t testing.TB, name string, groups ...string) *rest.Config {
	t.Helper()
	u, err := k.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("add envtest user %s: %v", name, err)
	}
	return u.Config()
}
