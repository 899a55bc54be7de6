package ipmi_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/vmha/vmha/fencing/ipmi"
	"github.com/vmha/vmha/internal/secret"
)

// FuzzBMCResponses is a BMC that answers every datagram with whatever the
// fuzzer gives (its input split at "|" into successive answers: the session
// handshake takes several). A BMC answering garbage must give an error,
// never a panic in the fencing leader, and the call must end by its
// timeout.
func FuzzBMCResponses(f *testing.F) {
	// An RMCP header with an IPMI 2.0 session header, then noise; an ASF
	// ping answer; short and empty packets.
	f.Add([]byte("\x06\x00\xff\x07\x06\x11\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00|\x06\x00\xff\x07\x06\x00"))
	f.Add([]byte("\x06\x00\xff\x06\x00\x00\x11\xbe\x40\x00\x00\x10\x00\x00\x11\xbe\x00\x00\x00\x00\x81\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x06"))
	f.Add([]byte("|||"))
	f.Add(bytes.Repeat([]byte{0xff}, 600))
	f.Fuzz(func(t *testing.T, answers []byte) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Skip(err)
		}
		defer func() { _ = pc.Close() }()
		parts := bytes.Split(answers, []byte("|"))
		go func() {
			buf := make([]byte, 2048)
			for i := 0; ; i++ {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(parts[i%len(parts)], from)
			}
		}()
		d, err := ipmi.New(ipmi.Config{Host: "127.0.0.1", Port: pc.LocalAddr().(*net.UDPAddr).Port, User: "admin", Password: secret.New("pw"), Timeout: 150 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st, err := d.Status(context.Background())
		if err == nil && st != "on" && st != "off" {
			t.Fatalf("no error and power state %q from garbage", st)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("the call took %s with a 150ms timeout", el)
		}
	})
}
