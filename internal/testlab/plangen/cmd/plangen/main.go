// Command plangen writes cluster.yaml and status.yaml for the vmha plan
// figures of docs/scale.md:
//
//	go run ./internal/testlab/plangen/cmd/plangen -hosts 1000 -vms 50000 -dir /tmp/p1000
//	vmha plan --config /tmp/p1000/cluster.yaml --status /tmp/p1000/status.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

func main() {
	nh := flag.Int("hosts", 32, "hosts")
	nv := flag.Int("vms", 2000, "VMs")
	dir := flag.String("dir", ".", "directory to write cluster.yaml and status.yaml into")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, s, err := plangen.Write(*dir, *nh, *nv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(c, s)
}
