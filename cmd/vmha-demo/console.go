package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/labcluster"
)

// serveConsole (-console) keeps the demo cluster running after its story,
// with the web console on every surviving host, and prints where to log in
// and an operator token for it, until Ctrl-C.
func serveConsole(c *labcluster.Cluster, vmha string) error {
	alive := c.Alive()
	if len(alive) == 0 {
		return fmt.Errorf("no host left to serve the console")
	}
	out, err := exec.Command(vmha, "--socket", alive[0].Socket, "token", "create", "demo", "--role", "operator", "--ttl", "8h", "-o", "json").Output()
	if err != nil {
		return fmt.Errorf("vmha token create: %w", err)
	}
	var tok api.TokenCreated
	if err := json.Unmarshal(out, &tok); err != nil {
		return fmt.Errorf("vmha token create answered %q: %w", out, err)
	}
	var urls []string
	for _, h := range alive {
		urls = append(urls, "https://"+h.WebAddr+"/ ("+h.Name+")")
	}
	say("the web console (a self-signed certificate: the browser asks you to accept it):\n    %s\n  log in with this operator token (valid 8 h):\n    %s\n  Ctrl-C ends the demo", strings.Join(urls, "\n    "), tok.Token)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	signal.Stop(sig)
	return nil
}
