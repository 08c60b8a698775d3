package arg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/sources/arg/fluxconfig"
)

// Query selects every Flux configuration the credential can read in the
// configuration's subscriptions, in a stable order for paging.
const Query = `kubernetesconfigurationresources
| where type =~ 'microsoft.kubernetesconfiguration/fluxconfigurations'
| project id, name, type, subscriptionId, resourceGroup, properties
| order by id asc`

// Defaults of Options.
const (
	// DefaultPageSize is Resource Graph's largest page.
	DefaultPageSize = 1000
	// DefaultBatchSize is how many reports go to ingest at once.
	DefaultBatchSize = 1000
	// maxSubscriptionsPerQuery is Resource Graph's limit of subscriptions
	// in one request.
	maxSubscriptionsPerQuery = 1000
	// maxPages stops a poll that pages forever (a server repeating its
	// skip token).
	maxPages = 100000
	// maxExamples is how many skipped rows a Result describes.
	maxExamples = 5
)

// Options configure pollers.
type Options struct {
	// Ingest stores the reports. Required.
	Ingest *ingest.Service
	// Credentials gives each configuration its credential. Required.
	Credentials Credentials
	// ClientOptions configure the Resource Graph client: cloud, transport
	// (the SDK's fake server in tests), retries. Zero values take the SDK's
	// defaults, with up to 5 retries of throttled requests.
	ClientOptions arm.ClientOptions
	// Metrics, when set, record every poll.
	Metrics *Metrics
	// Logger; slog.Default when nil.
	Logger *slog.Logger
	// PageSize is the rows of one page (DefaultPageSize).
	PageSize int
	// BatchSize is the reports of one ingest call (DefaultBatchSize).
	BatchSize int
	// MaxBackoff bounds the wait after failed polls (15 minutes).
	MaxBackoff time.Duration
	// OnResult is called after every poll (from the poller's goroutine).
	OnResult func(key string, r Result)
	// Clock is the source of "now"; time.Now when nil.
	Clock func() time.Time
}

func (o *Options) defaults() error {
	if o.Ingest == nil {
		return errors.New("arg: Options.Ingest is required")
	}
	if o.Credentials == nil {
		return errors.New("arg: Options.Credentials is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PageSize <= 0 || o.PageSize > DefaultPageSize {
		o.PageSize = DefaultPageSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 15 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.ClientOptions.Retry.MaxRetries == 0 {
		o.ClientOptions.Retry.MaxRetries = 5
	}
	if o.ClientOptions.Retry.MaxRetryDelay == 0 {
		// Resource Graph throttles in windows of seconds; Retry-After stays
		// well under this.
		o.ClientOptions.Retry.MaxRetryDelay = 2 * time.Minute
	}
	return nil
}

// Result is what one poll read, skipped and changed.
type Result struct {
	Started  time.Time
	Duration time.Duration
	// Rows is the Flux configurations read; Skipped of them could not be
	// used, counted by reason in SkippedReasons and described (the first
	// few) in SkippedExamples.
	Rows, Skipped   int
	SkippedReasons  map[string]int
	SkippedExamples []string
	// Reconcilers is the reconcilers the rows hold; Changed how many
	// reports changed the hub; Created how many reconcilers appeared,
	// Retired how many vanished and were retired.
	Reconcilers, Changed, Created, Retired int
	// Throttled counts HTTP 429 answers (each retried after Retry-After).
	Throttled int
	// Err is why the poll failed; nothing is retired after a failed poll.
	Err error
}

// Summary is the result as the AzureResourceGraph status shows it.
func (r Result) Summary() *v1alpha1.PollSummary {
	s := &v1alpha1.PollSummary{
		Duration:    r.Duration.Round(time.Millisecond).String(),
		Rows:        int64(r.Rows),
		Skipped:     int64(r.Skipped),
		Reconcilers: int64(r.Reconcilers),
		Changed:     int64(r.Changed),
		Created:     int64(r.Created),
		Retired:     int64(r.Retired),
		Throttled:   int64(r.Throttled),
	}
	if len(r.SkippedReasons) > 0 {
		s.SkippedReasons = make(map[string]int64, len(r.SkippedReasons))
		for k, v := range r.SkippedReasons {
			s.SkippedReasons[k] = int64(v)
		}
	}
	if r.Err != nil {
		s.Error = r.Err.Error()
	}
	return s
}

// Message describes the result in one sentence, for a Ready condition.
func (r Result) Message() string {
	if r.Err != nil {
		return "polling Azure Resource Graph failed, retrying with backoff: " + r.Err.Error()
	}
	msg := fmt.Sprintf("polled %d Flux configurations in %s: %d reconcilers, %d changed, %d created, %d retired",
		r.Rows, r.Duration.Round(time.Millisecond), r.Reconcilers, r.Changed, r.Created, r.Retired)
	if r.Skipped > 0 {
		reasons := slices.Sorted(maps.Keys(r.SkippedReasons))
		parts := make([]string, len(reasons))
		for i, k := range reasons {
			parts[i] = fmt.Sprintf("%s %d", k, r.SkippedReasons[k])
		}
		msg += fmt.Sprintf("; %d rows skipped (%s), e.g. %s", r.Skipped, strings.Join(parts, ", "), strings.Join(r.SkippedExamples, "; "))
	}
	return msg
}

// Poller polls Azure Resource Graph for one configuration. Poll is not
// safe for concurrent use.
type Poller struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	throttle *throttle
	cred     azcore.TokenCredential
	client   *armresourcegraph.Client

	// sent is the fingerprint of the last report stored for each
	// reconciler: unchanged reports are not sent again.
	sent map[model.ReconcilerKey]uint64
	// rowKeys are the reconcilers of each configuration (by resource id)
	// in the last poll, kept alive while a row of it is skipped.
	rowKeys map[string][]model.ReconcilerKey
}

// NewPoller returns a poller of cfg.
func NewPoller(cfg Config, opts Options) (*Poller, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	return &Poller{
		cfg: cfg, opts: opts, throttle: newThrottle(),
		log:     opts.Logger.With("azureResourceGraph", cfg.Key()),
		sent:    map[model.ReconcilerKey]uint64{},
		rowKeys: map[string][]model.ReconcilerKey{},
	}, nil
}

// Config is the configuration the poller serves.
func (p *Poller) Config() Config { return p.cfg }

// Poll reads every page of Flux configurations, stores the reports that
// changed and, when every page was read, retires the reconcilers this
// configuration reported before that are gone.
func (p *Poller) Poll(ctx context.Context) Result {
	res := Result{Started: p.opts.Clock()}
	throttledBefore := p.throttle.throttled.Load()
	res.Err = p.poll(ctx, &res)
	res.Throttled = int(p.throttle.throttled.Load() - throttledBefore)
	res.Duration = p.opts.Clock().Sub(res.Started)
	p.opts.Metrics.observe(p.cfg.Key(), res)
	if res.Err != nil {
		p.log.Warn("Azure Resource Graph poll failed", "err", res.Err, "rows", res.Rows, "changed", res.Changed)
	} else {
		p.log.Info("Azure Resource Graph polled", "rows", res.Rows, "skipped", res.Skipped, "reconcilers", res.Reconcilers,
			"changed", res.Changed, "created", res.Created, "retired", res.Retired, "throttled", res.Throttled,
			"took", res.Duration.Round(time.Millisecond))
	}
	return res
}

func (p *Poller) poll(ctx context.Context, res *Result) error {
	client, err := p.resourceGraph(ctx)
	if err != nil {
		return err
	}
	rows, fetchErr := p.fetch(ctx, client)
	res.Rows = len(rows)

	source := p.cfg.Source()
	var reports []model.Report
	var present []model.ReconcilerKey
	hosts := map[string]string{} // host name -> cluster id
	rowKeys := make(map[string][]model.ReconcilerKey, len(p.rowKeys))
	for _, raw := range rows {
		m, err := fluxconfig.Map(raw, source)
		if err == nil {
			if id, ok := hosts[m.Cluster.Name]; ok && id != m.Cluster.ID {
				err = &fluxconfig.SkipError{Reason: fluxconfig.SkipDuplicateHost, Detail: fmt.Sprintf("clusters %s and %s are both named %s: the hub names hosts by cluster name; the second is skipped", id, m.Cluster.ID, m.Cluster.Name)}
			} else {
				hosts[m.Cluster.Name] = m.Cluster.ID
			}
		}
		if err != nil {
			p.skipped(res, err)
			if keys := p.rowKeys[m.ID]; m.ID != "" && keys != nil {
				// A configuration unreadable in this poll is not gone.
				rowKeys[m.ID] = keys
				present = append(present, keys...)
			}
			continue
		}
		for i := range m.Reports {
			if err == nil {
				if cerr := m.Reports[i].Check(); cerr != nil {
					err = &fluxconfig.SkipError{Reason: fluxconfig.SkipText, Detail: fmt.Sprintf("configuration %s: %v", m.ID, cerr)}
				}
			}
		}
		if err != nil {
			p.skipped(res, err)
			continue
		}
		keys := make([]model.ReconcilerKey, len(m.Reports))
		for i, r := range m.Reports {
			keys[i] = model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}
			reports = append(reports, r)
		}
		rowKeys[m.ID] = keys
		present = append(present, keys...)
	}
	res.Reconcilers = len(present)
	if err := p.apply(ctx, reports, res); err != nil {
		return err
	}
	if fetchErr != nil {
		return fetchErr
	}
	p.rowKeys = rowKeys
	retired, err := p.opts.Ingest.RetireMissing(ctx, source, present)
	if err != nil {
		return fmt.Errorf("retire vanished reconcilers: %w", err)
	}
	res.Retired = len(retired)
	for _, k := range retired {
		delete(p.sent, k)
		p.log.Info("reconciler vanished from Azure Resource Graph: retired", "host", k.Host, "reconciler", k.Name)
	}
	return nil
}

func (p *Poller) skipped(res *Result, err error) {
	reason, detail := fluxconfig.SkipNotObject, err.Error()
	var se *fluxconfig.SkipError
	if errors.As(err, &se) {
		reason, detail = se.Reason, se.Detail
	}
	res.Skipped++
	if res.SkippedReasons == nil {
		res.SkippedReasons = map[string]int{}
	}
	res.SkippedReasons[reason]++
	if len(res.SkippedExamples) < maxExamples {
		res.SkippedExamples = append(res.SkippedExamples, shorten(detail))
	}
	p.log.Debug("Azure Resource Graph row skipped", "reason", reason, "detail", detail)
}

// apply stores the reports that differ from what this poller last stored,
// in batches.
func (p *Poller) apply(ctx context.Context, reports []model.Report, res *Result) error {
	now := p.opts.Clock()
	var todo []model.Report
	var prints []uint64
	for _, r := range reports {
		if r.ObservedAt.After(now.Add(time.Minute)) {
			r.ObservedAt = time.Time{} // a clock ahead of ours: take "now"
		}
		fp := fingerprint(r)
		if old, ok := p.sent[model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}]; ok && old == fp {
			continue
		}
		todo = append(todo, r)
		prints = append(prints, fp)
	}
	for start := 0; start < len(todo); start += p.opts.BatchSize {
		end := min(start+p.opts.BatchSize, len(todo))
		out, err := p.opts.Ingest.ApplyReports(ctx, todo[start:end])
		if err != nil {
			return fmt.Errorf("store reports: %w", err)
		}
		for i, o := range out {
			r := todo[start+i]
			k := model.ReconcilerKey{Host: r.Host, Name: r.Reconciler}
			_, known := p.sent[k]
			p.sent[k] = prints[start+i]
			if o.Changed {
				res.Changed++
				if !known {
					res.Created++
				}
			}
		}
	}
	return nil
}

// shorten cuts a detail quoted in a status message.
func shorten(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}

// fingerprint hashes everything a report says.
func fingerprint(r model.Report) uint64 {
	h := fnv.New64a()
	for _, s := range []string{r.Host, r.HostType, r.Reconciler, r.ReconcilerType, r.Endpoint.Key(), r.Endpoint.StorageType,
		r.Commit, string(r.Status), r.Message, r.ObservedAt.UTC().Format(time.RFC3339Nano), r.Source} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	keys := make([]string, 0, len(r.HostLabels))
	for k := range r.HostLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k + "=" + r.HostLabels[k]))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// resourceGraph returns the client for the configuration's current
// credential.
func (p *Poller) resourceGraph(ctx context.Context) (*armresourcegraph.Client, error) {
	cred, err := p.opts.Credentials.Credential(ctx, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if p.client != nil && p.cred == cred {
		return p.client, nil
	}
	co := p.opts.ClientOptions
	co.PerRetryPolicies = append(slices.Clip(co.PerRetryPolicies), p.throttle)
	client, err := armresourcegraph.NewClient(cred, &co)
	if err != nil {
		return nil, fmt.Errorf("resource graph client: %w", err)
	}
	p.cred, p.client = cred, client
	return client, nil
}

// fetch reads every page of the query over the configuration's
// subscriptions. On error it returns the rows read so far.
func (p *Poller) fetch(ctx context.Context, client *armresourcegraph.Client) ([][]byte, error) {
	var rows [][]byte
	for start := 0; start < len(p.cfg.Subscriptions); start += maxSubscriptionsPerQuery {
		subs := p.cfg.Subscriptions[start:min(start+maxSubscriptionsPerQuery, len(p.cfg.Subscriptions))]
		var err error
		if rows, err = p.fetchSubscriptions(ctx, client, subs, rows); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func (p *Poller) fetchSubscriptions(ctx context.Context, client *armresourcegraph.Client, subs []string, rows [][]byte) ([][]byte, error) {
	query := Query
	format := armresourcegraph.ResultFormatObjectArray
	top := int32(p.opts.PageSize)
	req := armresourcegraph.QueryRequest{
		Query:         &query,
		Subscriptions: make([]*string, len(subs)),
		Options:       &armresourcegraph.QueryRequestOptions{ResultFormat: &format, Top: &top},
	}
	for i := range subs {
		req.Subscriptions[i] = &subs[i]
	}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		resp, err := client.Resources(ctx, req, nil)
		if err != nil {
			return rows, fmt.Errorf("query Azure Resource Graph (page %d): %w", page, describe(err))
		}
		data, ok := resp.Data.([]any)
		if !ok && resp.Data != nil {
			return rows, fmt.Errorf("resource graph page %d: data is %T, not an array of rows", page, resp.Data)
		}
		for _, d := range data {
			b, err := json.Marshal(d)
			if err != nil {
				b = nil // mapRow skips it as not an object
			}
			rows = append(rows, b)
		}
		if resp.SkipToken == nil || *resp.SkipToken == "" {
			return rows, nil
		}
		token := *resp.SkipToken
		if seen[token] || page >= maxPages {
			return rows, fmt.Errorf("resource graph page %d repeats an earlier $skipToken: stopped paging", page)
		}
		seen[token] = true
		req.Options.SkipToken = &token
	}
}

// describe shortens an SDK error to its status and code: the full error
// repeats the whole response.
func describe(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("HTTP %d", re.StatusCode)
		if re.ErrorCode != "" {
			msg += " " + re.ErrorCode
		}
		if re.StatusCode == 429 {
			msg += " (throttled after retries)"
		}
		return errors.New(msg)
	}
	return err
}

// The throttle runs in the client's pipeline.
var _ policy.Policy = (*throttle)(nil)
