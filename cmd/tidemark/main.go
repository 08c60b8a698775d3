// Command tidemark is the Tidemark deployment observability hub: server,
// controller, agent and client in one binary.
package main

import (
	"os"

	"github.com/tidemark-dev/tidemark/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:]))
}
