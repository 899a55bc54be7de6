package fencing

import "testing"

func TestValueChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(string) error
		ok    []string
		bad   []string
	}{
		{"host", CheckHost,
			[]string{"10.0.0.1", "fd00::1", "[fd00::1]", "bmc-1", "bmc_1.lab.example.com", "localhost", "a"},
			[]string{"", "/etc/passwd", "-oProxyCommand=x", "a b", "a;b", "a$(id)", "-a.b", "a..b", "a/b", "a:b:c:z"}},
		{"port", CheckPort, []string{"1", "623", "65535"}, []string{"", "0", "65536", "-1", "0623", "1 2", "1;x"}},
		{"number", CheckNumber, []string{"0", "20", "2.5"}, []string{"", "-1", "1e3", "$(x)", "1 2", ".5"}},
		{"word", CheckWord, []string{"", "1", "on", "lanplus", "2c", "0x20", "administrator"},
			[]string{"-1", "a b", "a;b", "/x", "_x", "a-b"}},
		{"name", CheckName, []string{"admin", "lab-host1", "fence@bmc", "user.name", "3", "a:b"},
			[]string{"", "-E", "/etc/shadow", "a b", "a'b", "a\"b", "a`b", "a$b", "a;b", "a|b", "a&b", "a\nb", "é"}},
		{"url path", CheckURLPath, []string{"/redfish/v1", "/redfish/v1/Systems/1", "/"},
			[]string{"", "redfish", "http://x/", "/a/../b", "/a b", "/a;b"}},
	} {
		for _, v := range tc.ok {
			if err := tc.check(v); err != nil {
				t.Errorf("%s %q: %v", tc.name, v, err)
			}
		}
		for _, v := range tc.bad {
			if err := tc.check(v); err == nil {
				t.Errorf("%s %q: accepted", tc.name, v)
			}
		}
	}
}
