// Package secret holds values such as IPMI passwords and gossip keys that must
// never appear in logs, status output or error messages.
package secret

import "encoding/json"

// Redacted is what every printing path shows instead of a secret.
const Redacted = "[redacted]"

// String is a secret string. It prints as Redacted through fmt (%v, %s, %q,
// %#v) and through zerolog's Stringer handling. Its JSON form is also
// Redacted, so it cannot leak through an API response by accident; code that
// must persist the value (the replicated state) uses Persist explicitly.
type String struct{ v string }

// New wraps a plain value.
func New(v string) String { return String{v: v} }

// Reveal returns the plain value; call it only where the value is used
// (an authentication exchange), never to print it.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s String) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer so %#v redacts too.
func (s String) GoString() string { return s.String() }

// MarshalJSON redacts: see Persist for the form that keeps the value.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Persist is the storable form of a secret, used only by the replicated state
// machine, whose log and snapshots live in the data directory (mode 0700).
type Persist string

// Store returns the storable form.
func (s String) Store() Persist { return Persist(s.v) }

// Load turns the storable form back into a secret.
func (p Persist) Load() String { return String{v: string(p)} }
