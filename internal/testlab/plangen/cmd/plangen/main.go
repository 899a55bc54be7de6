// Command plangen writes cluster.yaml and status.yaml (or a Pacemaker CIB)
// for the vmha plan figures of docs/scale.md:
//
//	go run ./internal/testlab/plangen/cmd/plangen -hosts 1000 -vms 50000 -dir /tmp/p1000
//	vmha plan --config /tmp/p1000/cluster.yaml --status /tmp/p1000/status.yaml
//	go run ./internal/testlab/plangen/cmd/plangen -hosts 1000 -vms 50000 -short -dir /tmp/p1000s   # capacity short
//	go run ./internal/testlab/plangen/cmd/plangen -hosts 32 -vms 500 -cib -dir /tmp/c32
//	vmha plan --pacemaker-cib /tmp/c32/cib.xml
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

func main() {
	nh := flag.Int("hosts", 32, "hosts")
	nv := flag.Int("vms", 2000, "VMs")
	dir := flag.String("dir", ".", "directory to write the files into")
	cib := flag.Bool("cib", false, "write cib.xml (with every node's probe history) instead of the YAML files")
	short := flag.Bool("short", false, "make capacity short (hosts offer 70% of the memory the VMs need on average; about a tenth stay stopped); YAML files only")
	flag.Parse()
	if *short && *cib {
		fmt.Fprintln(os.Stderr, "plangen: -short applies to the YAML files, not -cib")
		os.Exit(2)
	}
	if err := write(*dir, *nh, *nv, *cib, plangen.Options{Short: *short}); err != nil {
		fmt.Fprintln(os.Stderr, "plangen:", err)
		os.Exit(1)
	}
}

func write(dir string, nh, nv int, cib bool, o plangen.Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if cib {
		p := filepath.Join(dir, "cib.xml")
		fmt.Println(p)
		return os.WriteFile(p, plangen.CIB(nh, nv), 0o644)
	}
	c, s, err := plangen.WriteWith(dir, nh, nv, o)
	fmt.Println(c, s)
	return err
}
