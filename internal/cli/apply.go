package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// document is one YAML or JSON document of an applied file.
type document struct {
	file  string
	index int // 1-based position in the file
	kind  string
	name  string
	json  []byte
}

func (d document) String() string {
	s := fmt.Sprintf("%s: document %d", d.file, d.index)
	if d.kind != "" {
		s += fmt.Sprintf(" (%s %q)", d.kind, d.name)
	}
	return s
}

// The kinds apply accepts, with the API path each is pushed to.
var applyKinds = map[string]string{
	resource.KindDeploymentDescriptor: "/api/v1/deploymentdescriptors",
	resource.KindReconciler:           "/api/v1/reconcilers",
	resource.KindAzureResourceGraph:   "/api/v1/azureresourcegraphs",
}

func newApplyCmd() *cobra.Command {
	var (
		files     []string
		recursive bool
		dryRun    bool
		c         client
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Send DeploymentDescriptors, Reconcilers and AzureResourceGraphs to a hub",
		Long: `Send hub.kalypso.io/v1alpha1 resources to a hub: the same multi-document YAML
(or JSON) that kubectl apply takes. Every document is validated before any is
sent; errors name the file, the document and the field.`,
		Example: `  tidemark apply -f descriptor.yaml
  tidemark apply -f ./gitops/ -R --server https://tidemark.example.com
  kubectl get reconcilers -o yaml | tidemark apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("give at least one -f FILE, DIR or - (standard input)")
			}
			docs, err := readDocuments(files, recursive, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := validateDocuments(docs); err != nil {
				return err
			}
			if dryRun {
				for _, d := range docs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s valid (dry run)\n", strings.ToLower(d.kind), d.name)
				}
				return nil
			}
			return c.push(cmd.Context(), cmd.OutOrStdout(), docs)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - for standard input (repeatable)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories recursively")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate only; send nothing")
	c.flags(cmd)
	return cmd
}

// readDocuments reads every document of the named files, directories
// (*.yaml, *.yml, *.json) and standard input ("-").
func readDocuments(paths []string, recursive bool, stdin io.Reader) ([]document, error) {
	var docs []document
	for _, p := range paths {
		if p == "-" {
			ds, err := splitDocuments("<stdin>", stdin)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		var files []string
		if info.IsDir() {
			err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() && path != p && !recursive {
					return filepath.SkipDir
				}
				switch strings.ToLower(filepath.Ext(path)) {
				case ".yaml", ".yml", ".json":
					if !d.IsDir() {
						files = append(files, path)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		} else {
			files = []string{p}
		}
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return nil, err
			}
			ds, err := splitDocuments(f, fh)
			fh.Close()
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents found in %s", strings.Join(paths, ", "))
	}
	return docs, nil
}

// splitDocuments splits a multi-document YAML stream, converting each
// document to JSON and expanding Lists, as kubectl does.
func splitDocuments(file string, r io.Reader) ([]document, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []document
	for index := 1; ; index++ {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, index, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			index--
			continue
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: not valid YAML: %w", file, index, err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &meta); err != nil {
			return nil, fmt.Errorf("%s: document %d: not an object with apiVersion and kind: %w", file, index, err)
		}
		if strings.HasSuffix(meta.Kind, "List") {
			for _, item := range meta.Items {
				var m struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
				}
				_ = json.Unmarshal(item, &m)
				docs = append(docs, document{file: file, index: index, kind: m.Kind, name: m.Metadata.Name, json: item})
			}
			continue
		}
		docs = append(docs, document{file: file, index: index, kind: meta.Kind, name: meta.Metadata.Name, json: js})
	}
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
		}
	}
	return out
}

// validateDocuments checks every document as the hub will, so that nothing
// is sent when anything is wrong. The error lists every problem.
func validateDocuments(docs []document) error {
	var problems []string
	for _, d := range docs {
		for _, p := range validateDocument(d) {
			problems = append(problems, fmt.Sprintf("%s: %s", d, p))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing was sent; fix these and apply again:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func validateDocument(d document) []string {
	var meta struct {
		APIVersion string `json:"apiVersion"`
	}
	_ = json.Unmarshal(d.json, &meta)
	if _, ok := applyKinds[d.kind]; !ok {
		return []string{fmt.Sprintf("kind: %q is not a kind tidemark accepts: use DeploymentDescriptor, Reconciler or AzureResourceGraph", d.kind)}
	}
	if meta.APIVersion != v1alpha1.GroupVersion.String() {
		return []string{fmt.Sprintf("apiVersion: %q is not supported: use %s", meta.APIVersion, v1alpha1.GroupVersion)}
	}
	var err error
	switch d.kind {
	case resource.KindDeploymentDescriptor:
		var r v1alpha1.DeploymentDescriptor
		if err = decodeStrictTypes(d.json, &r); err == nil {
			_, err = resource.Descriptor(&r, resource.FluxApplied{})
		}
	case resource.KindReconciler:
		var r v1alpha1.Reconciler
		if err = decodeStrictTypes(d.json, &r); err == nil {
			_, err = resource.Report(&r)
		}
	default:
		var r v1alpha1.AzureResourceGraph
		if err = decodeStrictTypes(d.json, &r); err == nil {
			err = resource.ValidateAzureResourceGraph(&r)
		}
	}
	var ve *model.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		out := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			out[i] = f.Error()
		}
		return out
	default:
		return []string{err.Error()}
	}
}

// decodeStrictTypes decodes JSON, turning a type mismatch into an error
// that names the field and the fix.
func decodeStrictTypes(js []byte, v any) error {
	err := json.Unmarshal(js, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		fix := ""
		if te.Type.Kind().String() == "string" {
			fix = ": quote the value in YAML"
		}
		return fmt.Errorf("%s: must be a %s, not a %s%s", te.Field, te.Type.Kind(), te.Value, fix)
	}
	return err
}

// push sends the documents, one request per kind in the order kinds first
// appear, and prints what each became, as kubectl does.
func (c *client) push(ctx context.Context, out io.Writer, docs []document) error {
	var kinds []string
	byKind := map[string][]document{}
	for _, d := range docs {
		if _, seen := byKind[d.kind]; !seen {
			kinds = append(kinds, d.kind)
		}
		byKind[d.kind] = append(byKind[d.kind], d)
	}
	for _, kind := range kinds {
		ds := byKind[kind]
		items := make([]json.RawMessage, len(ds))
		for i, d := range ds {
			items[i] = d.json
		}
		var res api.PushResult
		if err := c.do(ctx, http.MethodPost, applyKinds[kind], items, &res); err != nil {
			var p *problemError
			if errors.As(err, &p) && len(ds) > 0 {
				return fmt.Errorf("%s documents from %s: %w", kind, ds[0].file, err)
			}
			return err
		}
		for i, item := range res.Items {
			state := "unchanged"
			if item.Changed {
				state = "configured"
			}
			if item.Pending {
				state += " (GitOps commit pending)"
			}
			name := item.Name
			if i < len(ds) && ds[i].name != "" {
				name = ds[i].name
			}
			fmt.Fprintf(out, "%s/%s %s\n", strings.ToLower(kind), name, state)
		}
	}
	return nil
}
