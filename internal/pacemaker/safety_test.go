package pacemaker

import (
	"strings"
	"testing"
)

func TestUnsafeSettings(t *testing.T) {
	cib := `<cib have-quorum="1"><configuration><crm_config><cluster_property_set id="o">
<nvpair id="o-st" name="stonith-enabled" value="false"/><nvpair id="o-q" name="no-quorum-policy" value="ignore"/>
</cluster_property_set></crm_config><nodes/><resources/><constraints/></configuration></cib>`
	w, err := UnsafeSettings([]byte(cib))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 2 || !strings.Contains(w[0], "stonith-enabled (nvpair o-st)=false") || !strings.Contains(w[0], "vmha always fences") ||
		!strings.Contains(w[1], "no-quorum-policy (nvpair o-q)=ignore") || !strings.Contains(w[1], "never acts without quorum") {
		t.Errorf("warnings %q", w)
	}
	w, err = UnsafeSettings([]byte(`<cib><configuration><crm_config><cluster_property_set id="o"><nvpair id="x" name="stonith-enabled" value="true"/></cluster_property_set></crm_config></configuration></cib>`))
	if err != nil || len(w) != 0 {
		t.Errorf("safe CIB: %q %v", w, err)
	}
}

const kvmCorosync = `totem {
    version: 2
    cluster_name: kvm # the seed's example
}
nodelist {
    node {
        ring0_addr: kvm1
        nodeid: 1
    }
    node {
        ring0_addr: kvm2
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
    expected_votes: 2
}
`

func TestCorosyncUnsafe(t *testing.T) {
	q, err := ParseCorosync([]byte(kvmCorosync))
	if err != nil {
		t.Fatal(err)
	}
	if q.Nodes != 2 || q.ExpectedVotes != 2 || q.TwoNode {
		t.Fatalf("%+v", q)
	}
	w := q.Unsafe()
	if len(w) != 1 || !strings.Contains(w[0], "expected_votes 2 without two_node") || !strings.Contains(w[0], "quorum.two_node") {
		t.Errorf("%q", w)
	}
	for _, c := range []struct {
		conf string
		want string
	}{
		{strings.Replace(kvmCorosync, "expected_votes: 2", "expected_votes: 2\n two_node: 1", 1), ""},
		{strings.Replace(kvmCorosync, "expected_votes: 2", "expected_votes: 3\n two_node: 1", 1), "two_node: 1 with 3 votes"},
		{strings.Replace(kvmCorosync, "expected_votes: 2", "expected_votes: 3", 1), "expected_votes 3 but the nodelist has 2"},
		{strings.Replace(kvmCorosync, "provider: corosync_votequorum", "", 1), "no quorum provider"},
	} {
		q, err := ParseCorosync([]byte(c.conf))
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Join(q.Unsafe(), "\n")
		if (c.want == "") != (w == "") || !strings.Contains(w, c.want) {
			t.Errorf("want %q, got %q", c.want, w)
		}
	}
	for _, bad := range []string{"quorum {\n", "}\n", "quorum {\n expected_votes: x\n}", "quorum {\n junk\n}", "{\n}"} {
		if _, err := ParseCorosync([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseCorosync(f *testing.F) {
	f.Add([]byte(kvmCorosync))
	f.Add([]byte("quorum {\n two_node: 1\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseCorosync(data)
		if err != nil {
			return
		}
		_ = q.Unsafe()
		if q.Nodes < 0 || q.ExpectedVotes < 0 {
			t.Fatalf("%+v", q)
		}
	})
}

func FuzzUnsafeSettings(f *testing.F) {
	f.Add([]byte(oddCIB))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = UnsafeSettings(data) })
}
