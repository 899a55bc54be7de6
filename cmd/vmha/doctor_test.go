package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vmha/vmha/api"
)

// vmha doctor's output and exit status: 0 with warnings alone (1 with
// --strict), 1 on a fail; -o json is the array of lines; the fixes follow
// the table.
func TestDoctorCommand(t *testing.T) {
	ok := api.DoctorCheck{Check: "fence", Host: "h1", From: "h1", Status: api.DoctorOK, Message: "level 1 ipmi 10.0.0.1:623: power on (20ms)"}
	warn := api.DoctorCheck{Check: "version", Host: "h2", From: "h1", Status: api.DoctorWarn, Message: "vmhad v1, h1 runs v2", Fix: "finish the upgrade"}
	fail := api.DoctorCheck{Check: "fence", Host: "h3", From: "h1", Status: api.DoctorFail, Message: "level 1 ipmi 10.0.0.3:623: timeout", Fix: "check the device"}
	var answer api.DoctorReport
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathDoctor, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(answer)
	})
	sock := fakeDaemon(t, mux)
	report := func(cs ...api.DoctorCheck) api.DoctorReport {
		r := api.DoctorReport{Leader: "h1", Checks: cs}
		for _, c := range cs {
			switch c.Status {
			case api.DoctorOK:
				r.OK++
			case api.DoctorWarn:
				r.Warn++
			default:
				r.Fail++
			}
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		report api.DoctorReport
		args   []string
		code   int
		want   []string
	}{
		{"all ok", report(ok), nil, 0, []string{"HOST  CHECK", "h1    fence  h1    OK", "doctor: 1 ok, 0 warn, 0 fail (from leader h1"}},
		{"warnings exit 0", report(ok, warn), nil, 0, []string{"What to do:", "WARN version on h2: finish the upgrade"}},
		{"warnings with --strict", report(ok, warn), []string{"--strict"}, 1, []string{"WARN version on h2"}},
		{"a fail exits 1", report(ok, warn, fail), nil, 1, []string{"FAIL fence on h3: check the device", "1 fail"}},
		{"json", report(ok, fail), []string{"-o", "json"}, 1, []string{`"check": "fence"`, `"status": "fail"`, `"fix": "check the device"`}},
		{"json with no lines is an empty array", report(), []string{"-o", "json"}, 0, []string{"[]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.report
			code, out, errOut := runCLI(append([]string{"--socket", sock, "doctor"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(strings.Join(tc.args, " "), "json") {
				var cs []api.DoctorCheck
				if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != len(tc.report.Checks) {
					t.Fatalf("-o json is not the array of lines: %v\n%s", err, out)
				}
			}
		})
	}
}
