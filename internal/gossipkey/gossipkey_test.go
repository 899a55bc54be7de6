package gossipkey

import (
	"strings"
	"testing"
)

func TestNewDecodeFingerprint(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New()
	if a == b {
		t.Fatal("two keys are equal")
	}
	ka, err := Decode(a + "\n")
	if err != nil || len(ka) != Size {
		t.Fatalf("decode %v, %d bytes", err, len(ka))
	}
	kb, _ := Decode(b)
	if Fingerprint(ka) == Fingerprint(kb) || len(Fingerprint(ka)) != 12 || strings.Contains(a, Fingerprint(ka)) {
		t.Fatalf("fingerprints %s %s", Fingerprint(ka), Fingerprint(kb))
	}
}

func TestDecodeErrorsNeverEchoTheKey(t *testing.T) {
	for _, bad := range []string{"not base64 at all!!", "c2hvcnQ=", strings.Repeat("QUFB", 20)} {
		_, err := Decode(bad)
		if err == nil {
			t.Fatalf("%q accepted", bad)
		}
		if strings.Contains(err.Error(), bad) {
			t.Fatalf("error %q repeats the key", err)
		}
	}
}
