package libvirturi

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, uri string
		want      string // "" = accepted
	}{
		{"tls", "qemu+tls://mgmt.example.com/system", ""},
		{"default transport (tls)", "qemu://10.0.0.5/system", ""},
		{"tcp with port", "qemu+tcp://10.0.0.5:16509/system", ""},
		{"xen", "xen+tls://dom0/", ""},
		{"test default", "test:///default", ""},
		{"remote daemon name", "qemu+tls://mgmt/system?name=qemu:///system", ""},
		{"tls priority", "qemu+tls://mgmt/system?tls_priority=NORMAL", ""},
		{"ipv6 host", "qemu+tls://[fd00::5]/system", ""},

		{"ext transport", "qemu+ext:///system?command=/tmp/x.sh", "transport +ext is refused: the ext transport runs the program named by command="},
		{"ssh", "qemu+ssh://root@mgmt/system", "transport +ssh is refused"},
		{"libssh", "qemu+libssh://mgmt/system", "transport +libssh is refused"},
		{"libssh2", "qemu+libssh2://mgmt/system", "transport +libssh2 is refused"},
		{"unix", "qemu+unix:///system?socket=/run/x.sock", "transport +unix is refused"},
		{"unknown transport", "qemu+carrier://mgmt/system", "transport +carrier is not one vmha uses"},
		{"local hypervisor", "qemu:///system", "names no host"},
		{"test file", "test:///etc/shadow", "only test:///default"},
		{"test with a host", "test+tcp://mgmt/default", "only test:///default"},
		{"unknown driver", "vbox+tls://mgmt/session", `driver "vbox" is not one`},
		{"command param", "qemu+tls://mgmt/system?command=/tmp/x", "parameter command= is refused: it names a program"},
		{"socket param", "qemu+tls://mgmt/system?socket=/tmp/s", "parameter socket= is refused"},
		{"netcat param", "qemu+tls://mgmt/system?netcat=/tmp/x", "parameter netcat= is refused"},
		{"keyfile param", "qemu+tls://mgmt/system?keyfile=/root/.ssh/id_rsa", "parameter keyfile= is refused"},
		{"pkipath param", "qemu+tls://mgmt/system?pkipath=/tmp/pki", "parameter pkipath= is refused"},
		{"known_hosts param", "qemu+tls://mgmt/system?known_hosts=/tmp/kh", "parameter known_hosts= is refused"},
		{"no_verify param", "qemu+tls://mgmt/system?no_verify=1", "parameter no_verify= is refused"},
		{"unknown param", "qemu+tls://mgmt/system?frobnicate=1", "parameter frobnicate= is not one vmha passes"},
		{"path in a param", "qemu+tls://mgmt/system?mode=/x", "parameter mode= holds a path"},
		{"host is an option", "qemu+tls://-oProxyCommand=x/system", "host is not a host name"},
		{"password in the uri", "qemu+tcp://u:secret@mgmt/system", "holds a password"},
		{"user is an option", "qemu+tcp://-x@mgmt/system", "user name starts with '-'"},
		{"fragment", "qemu+tls://mgmt/system#x", "fragment"},
		{"not a uri", "mgmt", "is not a libvirt URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.uri)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s: %v", tc.uri, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v, want %q", tc.uri, err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error repeats the password: %v", err)
			}
		})
	}
	// Every refused part is named, not only the first.
	err := Check("qemu+ext:///system?command=/tmp/x.sh&socket=/s")
	for _, want := range []string{"transport +ext", "names no host", "parameter command=", "parameter socket="} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}
