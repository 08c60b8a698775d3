package store

import (
	"context"
	"time"

	"github.com/tidemark-dev/tidemark/internal/model"
)

// ReconcilerHost is a host that has a reconciler of some name.
type ReconcilerHost struct {
	Host    string
	Retired bool
}

// HostsWithReconciler lists the hosts that have a reconciler named name,
// live ones first.
func HostsWithReconciler(ctx context.Context, q Querier, name string) ([]ReconcilerHost, error) {
	rows, err := q.Query(ctx, `SELECT h.name, r.retired_at FROM reconcilers r JOIN hosts h ON h.id = r.host_id
		WHERE r.name = $1 ORDER BY CASE WHEN r.retired_at IS NULL THEN 0 ELSE 1 END, h.name LIMIT 100`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReconcilerHost
	for rows.Next() {
		var h ReconcilerHost
		var retired *time.Time
		if err := rows.Scan(&h.Host, &retired); err != nil {
			return nil, err
		}
		h.Retired = retired != nil
		out = append(out, h)
	}
	return out, rows.Err()
}

// ReconcilerIdentity is what a reconciler is besides its deployments: its
// type and the endpoint it applies.
type ReconcilerIdentity struct {
	Type     string
	Endpoint model.Endpoint
}

// GetReconcilerIdentity reads the type and endpoint of the reconciler name
// on host.
func GetReconcilerIdentity(ctx context.Context, q Querier, host, name string) (ReconcilerIdentity, error) {
	var id ReconcilerIdentity
	var joined bool
	err := q.QueryRow(ctx, `SELECT r.type, e.storage_type, e.repo, e.branch, e.path, e.joined
		FROM reconcilers r JOIN hosts h ON h.id = r.host_id JOIN endpoints e ON e.id = r.endpoint_id
		WHERE h.name = $1 AND r.name = $2`, host, name).Scan(&id.Type, &id.Endpoint.StorageType, &id.Endpoint.Repo,
		&id.Endpoint.Branch, &id.Endpoint.Path, &joined)
	id.Endpoint.Joined = joined
	return id, err
}

// StoredAzureResourceGraph is a poller configuration pushed through the
// API: its name and its spec as JSON.
type StoredAzureResourceGraph struct {
	Name, Spec string
}

// AzureResourceGraphs lists the stored poller configurations by name.
func AzureResourceGraphs(ctx context.Context, q Querier) ([]StoredAzureResourceGraph, error) {
	rows, err := q.Query(ctx, `SELECT name, CAST(spec AS TEXT) FROM azure_resource_graphs ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredAzureResourceGraph
	for rows.Next() {
		var a StoredAzureResourceGraph
		if err := rows.Scan(&a.Name, &a.Spec); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAzureResourceGraph removes a stored poller configuration; it
// reports whether there was one.
func DeleteAzureResourceGraph(ctx context.Context, q Querier, name string) (bool, error) {
	n, err := q.Exec(ctx, `DELETE FROM azure_resource_graphs WHERE name = $1`, name)
	return n > 0, err
}
