package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Web serves the web console (docs/web.md) on this host: off unless Addr
// is set. It speaks HTTPS only: with CertFile/KeyFile, else with the
// host's cluster certificate (tls:), else with a self-signed certificate
// vmhad makes once and keeps in data_dir (its fingerprint is logged).
type Web struct {
	// Addr is IP:port (or :port for every address) to listen on.
	Addr     string `mapstructure:"addr"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// SessionIdle ends a session unused that long; SessionMax any
	// session that long after its login (a session never outlives the
	// token it logged in with).
	SessionIdle time.Duration `mapstructure:"session_idle"`
	SessionMax  time.Duration `mapstructure:"session_max"`
}

func init() {
	Defaults["web.addr"] = ""
	Defaults["web.cert_file"] = ""
	Defaults["web.key_file"] = ""
	Defaults["web.session_idle"] = "30m"
	Defaults["web.session_max"] = "12h"
}

// validateWeb checks the web: section.
func validateWeb(w Web) []error {
	var errs []error
	if w.Addr != "" {
		host, port, err := net.SplitHostPort(w.Addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
			errs = append(errs, fmt.Errorf("web.addr: %q is not IP:port (or :port)", w.Addr))
		}
	}
	if (w.CertFile == "") != (w.KeyFile == "") {
		errs = append(errs, fmt.Errorf("web.cert_file and web.key_file: give both or neither"))
	}
	if w.SessionIdle < time.Minute || w.SessionIdle > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("web.session_idle: %v, want 1m to 168h", w.SessionIdle))
	}
	if w.SessionMax < w.SessionIdle || w.SessionMax > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("web.session_max: %v, want at least web.session_idle (%v) and at most 720h", w.SessionMax, w.SessionIdle))
	}
	return errs
}
