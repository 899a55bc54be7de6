package fencing

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Checks of the values a fence device's parameters hold, shared by the
// allow-lists of fencing/agent, fencing/libvirturi and fencing/spec. Fence
// configuration runs as root on whichever host leads: a value that should
// be a host name or a number must not be able to carry a path, an option
// (a leading "-"), or anything a shell or a command line would read as more
// than one word. The errors say what the value should be and never repeat
// it (a mistyped password could sit in the wrong field).

// shellMeta are the characters a shell, or a command line that an agent
// splits with shlex, gives a meaning of their own.
const shellMeta = " \t\r\n\x00'\"`$\\;|&<>(){}[]*?!#~^"

// The patterns are compiled on first use, not at init: their bounded
// repeats ({0,255}) compile to ~4,700 allocations and ~4 ms, which every
// start of every program that imports fencing (the vmha CLI among them)
// would pay whether or not it checks a value.
var (
	hostLabel = lazyRE(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)
	wordRE    = lazyRE(`^[A-Za-z0-9][A-Za-z0-9_.]{0,63}$`)
	numberRE  = lazyRE(`^[0-9]{1,9}(\.[0-9]{1,6})?$`)
	urlPathRE = lazyRE(`^/[A-Za-z0-9/_.~%:@=+-]{0,255}$`)
)

func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// CheckHost accepts a host name (letters, digits, "-" and "_" in dot
// separated labels), an IPv4 address or an IPv6 address (bare or in
// brackets).
func CheckHost(v string) error {
	if v == "" {
		return errors.New("is empty, want a host name or IP address")
	}
	if ip := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"); net.ParseIP(ip) != nil {
		return nil
	}
	if len(v) > 253 {
		return errors.New("is longer than a host name can be")
	}
	for _, l := range strings.Split(strings.TrimSuffix(v, "."), ".") {
		if !hostLabel().MatchString(l) || strings.HasPrefix(l, "-") {
			return errors.New("is not a host name or IP address (letters, digits, '-', '_' and '.')")
		}
	}
	return nil
}

// CheckPort accepts a TCP or UDP port number, 1-65535.
func CheckPort(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != v {
		return errors.New("is not a port number (1-65535)")
	}
	return nil
}

// CheckNumber accepts a non-negative decimal number (seconds, a count).
func CheckNumber(v string) error {
	if !numberRE().MatchString(v) {
		return errors.New("is not a non-negative number")
	}
	return nil
}

// CheckWord accepts a flag or an enumerated value: empty, or letters and
// digits with "_" and ".", starting with a letter or digit (on, 1, lanplus,
// 2c, administrator, 0x20).
func CheckWord(v string) error {
	if v != "" && !wordRE().MatchString(v) {
		return errors.New("is not a single word (letters, digits, '_' and '.')")
	}
	return nil
}

// CheckName accepts a user name, a plug or outlet name, a domain name or an
// SNMP community: printable, no white space, no shell metacharacter, not
// starting with "-" (an option) or "/" (a path), at most 128 bytes.
func CheckName(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > 128:
		return errors.New("is longer than 128 bytes")
	case strings.HasPrefix(v, "-"):
		return errors.New("starts with '-', which a command line reads as an option")
	case strings.HasPrefix(v, "/"):
		return errors.New("starts with '/': a path, where a name is expected")
	}
	for _, r := range v {
		if r < 0x21 || r > 0x7e {
			return errors.New("holds a character that is not printable ASCII")
		}
		if strings.ContainsRune(shellMeta, r) {
			return fmt.Errorf("holds %q, a shell metacharacter", r)
		}
	}
	return nil
}

// CheckURLPath accepts a path on a device's own web server (a Redfish
// URI such as /redfish/v1): it starts with "/", has no "..", and holds only
// URL path characters.
func CheckURLPath(v string) error {
	if !urlPathRE().MatchString(v) || strings.Contains(v, "..") {
		return errors.New("is not a URL path on the device (/..., letters, digits and / _ . ~ % : @ = + -)")
	}
	return nil
}
