package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/ingest"
	"github.com/tidemark-dev/tidemark/internal/resource"
	"github.com/tidemark-dev/tidemark/internal/sources/arg"
)

// argPollFlags configure the Azure Resource Graph pollers of `serve` and
// `controller`.
type argPollFlags struct {
	poll               bool
	configFile         string
	secretsDir         string
	federatedTokenFile string
}

func (f *argPollFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.poll, "arg-poll", true, "poll Azure Resource Graph for every AzureResourceGraph (resources, --arg-config, pushed through the API)")
	fl.StringVar(&f.federatedTokenFile, "azure-federated-token-file", os.Getenv("AZURE_FEDERATED_TOKEN_FILE"),
		"workload identity token file for managedIdentity client ids (env AZURE_FEDERATED_TOKEN_FILE, set by the workload identity webhook); empty uses the managed identity endpoint")
	if cmd.Name() == "serve" {
		fl.StringVar(&f.configFile, "arg-config", "", "YAML file of AzureResourceGraph documents to poll (the same fields as the resource)")
		fl.StringVar(&f.secretsDir, "arg-secrets-dir", "", "folder of service principal Secrets for secretRef: <dir>/<secretRef>/clientId and clientSecret (a mounted Secret volume)")
	}
}

// manager builds the pollers (nil with --arg-poll=false). Their
// credentials are returned so that the controller can give them its Secret
// reader.
func (f *argPollFlags) manager(ing *ingest.Service, log *slog.Logger, reg prometheus.Registerer) (*arg.Manager, *arg.AzureCredentials, error) {
	if !f.poll {
		if f.configFile != "" {
			return nil, nil, fmt.Errorf("--arg-config needs --arg-poll")
		}
		return nil, nil, nil
	}
	creds := &arg.AzureCredentials{FederatedTokenFile: f.federatedTokenFile}
	if f.secretsDir != "" {
		creds.Secrets = arg.DirSecrets(f.secretsDir)
	}
	m, err := arg.NewManager(arg.Options{Ingest: ing, Credentials: creds, Logger: log, Metrics: arg.NewMetrics(reg)})
	if err != nil {
		return nil, nil, err
	}
	if f.configFile != "" {
		cfgs, err := readARGConfig(f.configFile)
		if err != nil {
			return nil, nil, err
		}
		m.Replace(arg.OriginFile, cfgs)
		log.Info("polling Azure Resource Graph", "file", f.configFile, "configurations", len(cfgs))
	}
	return m, creds, nil
}

// readARGConfig reads AzureResourceGraph documents (YAML or JSON, several
// separated by ---, or a List), validating each.
func readARGConfig(path string) ([]arg.Config, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--arg-config: %w", err)
	}
	defer file.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(file, 64<<10)
	var cfgs []arg.Config
	for i := 0; ; i++ {
		var doc struct {
			v1alpha1.AzureResourceGraph `json:",inline"`
			Items                       []v1alpha1.AzureResourceGraph `json:"items"`
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("--arg-config %s: document %d: %w", path, i+1, err)
		}
		docs := doc.Items
		if doc.Kind != "" && doc.Kind != "List" && doc.Kind != resource.KindAzureResourceGraph+"List" {
			docs = []v1alpha1.AzureResourceGraph{doc.AzureResourceGraph}
		}
		for _, d := range docs {
			if err := resource.CheckTypeMeta(d.APIVersion, d.Kind, resource.KindAzureResourceGraph); err != nil {
				return nil, fmt.Errorf("--arg-config %s: document %d: %w", path, i+1, err)
			}
			c, err := arg.ConfigFrom(&d)
			if err != nil {
				return nil, fmt.Errorf("--arg-config %s: AzureResourceGraph %q: %w", path, d.Name, err)
			}
			c.Namespace = "" // one namespace-less key space with the API's
			cfgs = append(cfgs, c)
		}
	}
	return cfgs, nil
}

// storedARGEvery is how often `serve` reads the AzureResourceGraphs pushed
// through the API.
const storedARGEvery = 15 * time.Second

// runPollers runs the pollers and the poller of each AzureResourceGraph
// pushed through the API until ctx ends.
func runPollers(ctx context.Context, m *arg.Manager, ing *ingest.Service) {
	go func() { _ = m.Start(ctx) }()
	go func() { _ = arg.SyncStored(ctx, m, ing, storedARGEvery) }()
}
