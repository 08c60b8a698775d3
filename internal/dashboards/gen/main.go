// Command gen writes Tidemark's Grafana dashboards as JSON (go generate in
// internal/dashboards).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tidemark-dev/tidemark/internal/dashboards"
)

func main() {
	out := flag.String("out", ".", "folder to write the dashboards' JSON files into")
	flag.Parse()
	if err := dashboards.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
