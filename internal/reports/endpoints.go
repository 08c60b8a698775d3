package reports

import (
	"context"
	"slices"
	"strconv"
	"strings"
)

// EndpointEnvironments gives, for each manifests endpoint key
// (model.Endpoint.Key), the environments of the targets whose manifests
// are written there; keys no target uses are absent. Sources use it to
// check the environment a report names against the one the hub knows.
func (s *Service) EndpointEnvironments(ctx context.Context, keys []string) (map[string][]string, error) {
	out := map[string][]string{}
	const chunk = 500 // placeholders per query
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		args := make([]any, n)
		ph := make([]string, n)
		for i, k := range keys[:n] {
			args[i] = k
			ph[i] = "$" + strconv.Itoa(i+1)
		}
		keys = keys[n:]
		rows, err := s.st.Read().Query(ctx, `SELECT DISTINCT e.key, env.name
			FROM endpoints e
			JOIN targets t ON t.endpoint_id = e.id
			JOIN environments env ON env.id = t.environment_id
			WHERE e.key IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var key, env string
			if err := rows.Scan(&key, &env); err != nil {
				rows.Close()
				return nil, err
			}
			out[key] = append(out[key], env)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for _, envs := range out {
		slices.Sort(envs)
	}
	return out, nil
}
