// Command etcd is the etcd server, built from a pinned module version so that
// envtest does not need to download a prebuilt binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
