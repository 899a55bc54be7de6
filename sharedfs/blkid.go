package sharedfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Signature is what blkid finds on a device (`blkid -p -o export DEV`).
type Signature struct {
	Type  string // gfs2, ocfs2, ext4, LVM2_member, … ("" when none)
	Usage string // filesystem, raid, crypto, other
	Label string
	UUID  string
	// Fields holds every KEY=value pair as printed.
	Fields map[string]string
}

// ParseBlkidExport parses `blkid -o export` output: KEY=value lines, one
// device per block separated by a blank line. It returns the first block;
// empty output (blkid found no signature) gives a zero Signature.
func ParseBlkidExport(data []byte) (Signature, error) {
	sig := Signature{Fields: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			if len(sig.Fields) > 0 {
				break // only the first device
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return Signature{}, fmt.Errorf("blkid export line %d %q: want KEY=value", n, line)
		}
		sig.Fields[k] = v
	}
	if err := sc.Err(); err != nil {
		return Signature{}, fmt.Errorf("blkid export: %w", err)
	}
	sig.Type = sig.Fields["TYPE"]
	if sig.Type == "" {
		sig.Type = sig.Fields["PTTYPE"] // a partition table is a signature too
	}
	sig.Usage = sig.Fields["USAGE"]
	sig.Label = sig.Fields["LABEL"]
	sig.UUID = sig.Fields["UUID"]
	return sig, nil
}

// Probe runs `blkid -p -o export device` (low-level probing: it reads the
// device itself, not the cache). blkid exits 2 when it finds nothing, which
// is a zero Signature and no error. blkid also exits 2, silently, for a
// path that does not exist, so Probe first checks that device exists on
// this host (storage init runs where the device is).
func Probe(ctx context.Context, r Runner, device string) (Signature, error) {
	if _, err := os.Stat(device); err != nil {
		return Signature{}, fmt.Errorf("probing %s for a signature: %w", device, err)
	}
	out, err := r.Run(ctx, "blkid", "-p", "-o", "export", device)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && ee.Code == 2 && len(bytes.TrimSpace(out)) == 0 {
			return Signature{Fields: map[string]string{}}, nil
		}
		return Signature{}, fmt.Errorf("probing %s for a signature: %w", device, err)
	}
	sig, err := ParseBlkidExport(out)
	if err != nil {
		return Signature{}, fmt.Errorf("probing %s: %w", device, err)
	}
	return sig, nil
}
