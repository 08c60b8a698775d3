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
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/tidemark-dev/tidemark/api/v1alpha1"
	"github.com/tidemark-dev/tidemark/internal/api"
	"github.com/tidemark-dev/tidemark/internal/model"
	"github.com/tidemark-dev/tidemark/internal/resource"
)

// document is one resource of an applied file: a YAML or JSON document,
// or an item of a List.
type document struct {
	file  string
	index int // 1-based position of the document in the file
	item  int // 1-based position in the List the document is, or 0
	seq   int // 1-based position among every resource applied
	kind  string
	name  string
	json  []byte
}

func (d document) String() string {
	s := fmt.Sprintf("%s: document %d", d.file, d.index)
	if d.item > 0 {
		s += fmt.Sprintf(" item %d", d.item)
	}
	if d.kind != "" {
		s += fmt.Sprintf(" (%s %s)", d.kind, model.Quote(d.name))
	}
	return s
}

// The kinds apply accepts, with the API path each is pushed to:
// descriptors and reconcilers together, all or nothing per request.
var applyKinds = map[string]string{
	resource.KindDeploymentDescriptor: "/api/v1/apply",
	resource.KindReconciler:           "/api/v1/apply",
	resource.KindAzureResourceGraph:   "/api/v1/azureresourcegraphs",
	resource.KindDeployment:           "/api/v1/deployments",
}

func newApplyCmd() *cobra.Command {
	var (
		files     []string
		recursive bool
		dryRun    bool
		limits    requestLimits
		c         client
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Send DeploymentDescriptors, Reconcilers and AzureResourceGraphs to a hub",
		Long: `Send hub.kalypso.io/v1alpha1 resources to a hub: the same multi-document YAML
(or JSON) that kubectl apply takes. Every document is validated before any is
sent; errors name the file, the document and the field.

DeploymentDescriptors and Reconcilers go together in one request, which the
hub stores all or nothing. Input over the hub's request limit
(--max-request-bytes, 8 MiB), or of more than --max-request-documents
resources (2,000: one transaction each on the hub), is split into several
requests, sent in order;
when one fails, apply says which resources were stored, which failed and
which were not sent, and exits 1. Applying the same input again is safe:
replays change nothing.`,
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
			switch {
			case limits.bytes < 1024:
				return fmt.Errorf("--max-request-bytes %d: give at least 1024", limits.bytes)
			case limits.documents < 1:
				return fmt.Errorf("--max-request-documents %d: give at least 1", limits.documents)
			}
			reqs, err := planRequests(docs, limits)
			if err != nil {
				return err
			}
			if dryRun {
				for _, d := range docs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s valid (dry run)\n", strings.ToLower(d.kind), d.name)
				}
				return nil
			}
			c.notes = cmd.ErrOrStderr()
			return c.push(cmd.Context(), cmd.OutOrStdout(), reqs, len(docs))
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - for standard input (repeatable)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories recursively")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate only; send nothing")
	cmd.Flags().IntVar(&limits.bytes, "max-request-bytes", api.MaxBodyBytes, "split the input into requests of at most this many bytes (lower it for a proxy with a smaller limit)")
	cmd.Flags().IntVar(&limits.documents, "max-request-documents", defaultRequestDocuments, "and of at most this many resources (each request is one transaction on the hub)")
	c.flags(cmd)
	c.retryFlag(cmd)
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
	for i := range docs {
		docs[i].seq = i + 1
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
			for i, item := range meta.Items {
				var m struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
				}
				_ = json.Unmarshal(item, &m)
				docs = append(docs, document{file: file, index: index, item: i + 1, kind: m.Kind, name: m.Metadata.Name, json: item})
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
		return []string{fmt.Sprintf("kind: %q is not a kind tidemark accepts: use DeploymentDescriptor, Reconciler, Deployment or AzureResourceGraph", d.kind)}
	}
	if meta.APIVersion != v1alpha1.GroupVersion.String() {
		return []string{fmt.Sprintf("apiVersion: %q is not supported: use %s", meta.APIVersion, v1alpha1.GroupVersion)}
	}
	_, err := resource.Decode(d.kind, d.json, decodeStrictTypes)
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

// applyRequest is one request of an apply: documents in their order, to
// one path.
type applyRequest struct {
	path string
	docs []document
}

// size is the length of the request's body: a JSON array of the documents.
func (r applyRequest) size() int {
	n := 1
	for _, d := range r.docs {
		n += len(d.json) + 1
	}
	return n
}

// body is the request's body.
func (r applyRequest) body() []byte {
	b := make([]byte, 0, r.size())
	b = append(b, '[')
	for i, d := range r.docs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d.json...)
	}
	return append(b, ']')
}

// requestLimits bound each request of an apply.
type requestLimits struct {
	bytes, documents int
}

// defaultRequestDocuments bounds the resources of one request: the hub
// stores each request in one transaction, which should stay short enough
// to answer well within the request timeout and not to hold other writers
// back for long.
const defaultRequestDocuments = 2000

// planRequests groups documents into as few requests as the limits allow:
// descriptors and reconcilers together, in their order (the hub stores
// each request all or nothing), then Deployments (which name reconcilers
// registered before them), then AzureResourceGraphs one by one (the
// hub stores each on its own: one per request keeps "what was stored"
// exact).
func planRequests(docs []document, limits requestLimits) ([]applyRequest, error) {
	var reqs []applyRequest
	for _, path := range []string{"/api/v1/apply", "/api/v1/deployments", "/api/v1/azureresourcegraphs"} {
		if path == "/api/v1/azureresourcegraphs" {
			limits.documents = 1
		}
		cur, size := applyRequest{path: path}, 1 // size: "[", and a "," or "]" after each
		for _, d := range docs {
			if applyKinds[d.kind] != path {
				continue
			}
			if len(d.json)+2 > limits.bytes {
				return nil, fmt.Errorf("nothing was sent: %s is %s as JSON, over the %s a request may carry (--max-request-bytes)",
					d, byteSize(len(d.json)), byteSize(limits.bytes))
			}
			if len(cur.docs) > 0 && (size+len(d.json)+1 > limits.bytes || len(cur.docs) == limits.documents) {
				reqs = append(reqs, cur)
				cur, size = applyRequest{path: path}, 1
			}
			cur.docs = append(cur.docs, d)
			size += len(d.json) + 1
		}
		if len(cur.docs) > 0 {
			reqs = append(reqs, cur)
		}
	}
	return reqs, nil
}

// push sends the requests in order and prints what each document became,
// as kubectl does. When a request fails, the error says which resources
// were stored, which failed and which were not sent.
func (c *client) push(ctx context.Context, out io.Writer, reqs []applyRequest, total int) error {
	var stored []int
	for i := 0; i < len(reqs); i++ {
		req := reqs[i]
		var res api.PushResult
		err := c.send(ctx, http.MethodPost, req.path, req.body(), &res)
		if httpStatus(err) == http.StatusRequestEntityTooLarge && len(req.docs) > 1 {
			// A proxy before the hub takes less than we planned for: the
			// request was refused whole; send it in halves.
			half := len(req.docs) / 2
			c.note("the hub refused a request of %s (413): sending it in two", byteSize(req.size()))
			reqs = slices.Insert(slices.Delete(reqs, i, i+1), i,
				applyRequest{path: req.path, docs: req.docs[:half]}, applyRequest{path: req.path, docs: req.docs[half:]})
			i--
			continue
		}
		if err == nil && len(res.Items) != len(req.docs) {
			err = fmt.Errorf("the hub answered %d items for %d documents", len(res.Items), len(req.docs))
		}
		if err != nil {
			return pushError(req, err, stored, reqs[i+1:], total)
		}
		for k, item := range res.Items {
			d := req.docs[k]
			state := "unchanged"
			if item.Changed {
				state = "configured"
			}
			if item.Pending {
				state += " (GitOps commit pending)"
			}
			name := d.name
			if name == "" {
				name = item.Name
			}
			fmt.Fprintf(out, "%s/%s %s\n", strings.ToLower(d.kind), name, state)
			stored = append(stored, d.seq)
		}
	}
	return nil
}

// pushError says what an apply stored before a request failed, what the
// request carried and why it failed (each problem named by its file and
// document), and what was not sent.
func pushError(failed applyRequest, err error, stored []int, rest []applyRequest, total int) error {
	var b strings.Builder
	if len(stored) == 0 {
		b.WriteString("nothing was stored")
	} else {
		fmt.Fprintf(&b, "%s of %s were stored", resources(stored), thousands(total))
	}
	seqs := make([]int, len(failed.docs))
	for i, d := range failed.docs {
		seqs[i] = d.seq
	}
	var pe *problemError
	if httpStatus(err) == 0 {
		// No answer: the hub may have stored the request before the
		// connection failed.
		fmt.Fprintf(&b, "; the request of %s got no answer, so whether they were stored is unknown: ", resources(seqs))
	} else {
		fmt.Fprintf(&b, "; %s failed (nothing of them was stored): ", resources(seqs))
	}
	if errors.As(err, &pe) {
		b.WriteString(pe.p.Title)
		if pe.p.Detail != "" {
			b.WriteString(": " + pe.p.Detail)
		}
		for _, f := range pe.p.Errors {
			field := f.Field
			if f.Item != nil && *f.Item >= 0 && *f.Item < len(failed.docs) {
				field = failed.docs[*f.Item].String() + ": " + strings.TrimPrefix(strings.TrimPrefix(field, fmt.Sprintf("items[%d]", *f.Item)), ".")
			}
			fmt.Fprintf(&b, "\n    %s: %s", field, f.Problem)
		}
	} else {
		b.WriteString(err.Error())
	}
	var unsent []int
	for _, r := range rest {
		for _, d := range r.docs {
			unsent = append(unsent, d.seq)
		}
	}
	if len(unsent) > 0 {
		fmt.Fprintf(&b, "\nnothing after was sent: %s", resources(unsent))
	}
	if len(stored) > 0 || len(unsent) > 0 {
		b.WriteString("\napplying the same input again is safe: what was stored is unchanged by a replay")
	}
	return errors.New(b.String())
}

// resources describes resource numbers (1-based, ascending) as ranges:
// "resources 1–12,000 and 12,005".
func resources(seqs []int) string {
	slices.Sort(seqs)
	var parts []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, thousands(seqs[i]))
		} else {
			parts = append(parts, thousands(seqs[i])+"–"+thousands(seqs[j]))
		}
		i = j + 1
	}
	word := "resources "
	if len(seqs) == 1 {
		word = "resource "
	}
	switch len(parts) {
	case 0:
		return "no resource"
	case 1:
		return word + parts[0]
	}
	return word + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// thousands writes n with thousands separators: 12,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// byteSize writes a size in bytes, KiB or MiB.
func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
