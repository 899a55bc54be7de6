// Command vmha is the operator's and scripts' interface to a vmha cluster.
// It talks to the local vmhad over its unix socket.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
