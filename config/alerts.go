package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/vmha/vmha/model"
)

// alertKinds are the kinds an alert may select.
var alertKinds = []string{"node", "fencing", "resource", "attribute", "cluster", "rules", "rebalance"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Alert defaults: an agent gets 30 s (Pacemaker's default timeout), a
// webhook 10 s per try and 3 retries.
const (
	DefaultAlertTimeout   = 30 * time.Second
	DefaultWebhookTimeout = 10 * time.Second
	DefaultWebhookRetries = 3
)

// validateAlerts checks each alert, naming it: a name, exactly one of an
// executable or a webhook URL, known kinds, environment names, files that
// exist.
func validateAlerts(as []Alert) []error {
	var errs []error
	seen := map[string]bool{}
	for i := range as {
		a := as[i]
		at := fmt.Sprintf("alerts[%d]", i)
		if err := model.ValidateName("alert", a.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s.name: %w", at, err))
		} else if seen[a.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", at, a.Name))
		}
		seen[a.Name] = true
		errs = append(errs, validateAlertTarget(at, &a)...)
		for _, k := range a.Kinds {
			if !slices.Contains(alertKinds, k) {
				errs = append(errs, fmt.Errorf("%s.kinds: %q, want some of %v", at, k, alertKinds))
			}
		}
		for k := range a.Env {
			if !envName.MatchString(k) {
				errs = append(errs, fmt.Errorf("%s.env: %q is not an environment variable name", at, k))
			}
		}
		if a.Timeout < 0 || a.Timeout > 10*time.Minute {
			errs = append(errs, fmt.Errorf("%s.timeout: %v, want up to 10m", at, a.Timeout))
		}
		if a.Retries < 0 || a.Retries > 10 {
			errs = append(errs, fmt.Errorf("%s.retries: %d, want 0 to 10", at, a.Retries))
		}
	}
	return errs
}

func validateAlertTarget(at string, a *Alert) []error {
	var errs []error
	switch {
	case (a.Path == "") == (a.Webhook == ""):
		return []error{fmt.Errorf("%s: give either path (an alert agent) or webhook (a URL)", at)}
	case a.Path != "":
		st, err := os.Stat(a.Path)
		switch {
		case !filepath.IsAbs(a.Path):
			errs = append(errs, fmt.Errorf("%s.path: %q is not an absolute path", at, a.Path))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.path: %w", at, err))
		case st.IsDir() || st.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s.path: %s is not an executable file", at, a.Path))
		}
		if a.CAFile != "" || a.TokenFile != "" || a.Retries != 0 {
			errs = append(errs, fmt.Errorf("%s: ca_file, token_file and retries are for a webhook", at))
		}
	default:
		u, err := url.Parse(a.Webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("%s.webhook: %q is not an http(s) URL without credentials (a token goes in token_file)", at, a.Webhook))
		} else if u.Scheme == "http" && a.TokenFile != "" {
			errs = append(errs, fmt.Errorf("%s.webhook: a token is sent only over https", at))
		}
		for k, f := range map[string]string{"ca_file": a.CAFile, "token_file": a.TokenFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", at, k, err))
			}
		}
	}
	return errs
}
