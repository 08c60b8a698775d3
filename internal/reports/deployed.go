package reports

import (
	"context"
	"time"
)

// Deployed narrows Host State to the hosts that deploy one version, or a
// commit the hub cannot place: exactly the hosts an Environment State row
// counts. The zero value does not narrow.
type Deployed struct {
	Version string `json:"version,omitempty"`
	Unknown bool   `json:"unknown,omitempty"`
}

func (d Deployed) matches(version string, known bool) bool {
	switch {
	case d.Unknown:
		return !known
	case d.Version != "":
		return known && version == d.Version
	}
	return true
}

// HostStateDeploying is HostState narrowed to the hosts that deploy d.
func (s *Service) HostStateDeploying(ctx context.Context, f Filter, d Deployed, p Page) ([]HostStateRow, string, error) {
	if d == (Deployed{}) {
		return s.HostState(ctx, f, p)
	}
	after, err := decodeHostKey(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	var out []HostStateRow
	var keys []hostKey
	// The version is known only after the join: read in batches, by key,
	// until the page is full.
	batch := max(limit+1, 500)
	passing, err := s.endpointsPassing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	for len(out) <= limit {
		rows, ks, err := s.hostRows(ctx, f, passing, batch, after)
		if err != nil {
			return nil, "", err
		}
		for i, r := range rows {
			if d.matches(r.Version, r.VersionKnown) {
				out, keys = append(out, r.HostStateRow), append(keys, ks[i])
			}
		}
		if len(rows) < batch {
			break
		}
		after = &ks[len(ks)-1]
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = keys[limit-1].encode()
	}
	if out == nil {
		out = []HostStateRow{}
	}
	return out, next, nil
}

// HostStateAtDeploying is HostStateAt narrowed to the hosts that deployed d
// at the time.
func (s *Service) HostStateAtDeploying(ctx context.Context, f Filter, at time.Time, d Deployed, p Page) ([]HostStateRow, string, error) {
	return s.hostStateAt(ctx, f, at, d, p)
}
