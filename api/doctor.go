package api

import "time"

// PathDoctor runs vmha doctor on the leader (GET: every check from every
// host, answered as a DoctorReport). Operators only: it queries every
// fence device's status and makes every host dial the others.
const PathDoctor = "/v1/doctor"

// PathLocalDoctor is one host's own facts for the doctor (GET:
// DoctorFacts). Hosts and operators; it reads only.
const PathLocalDoctor = "/v1/local/doctor"

// Doctor check statuses: ok, warn (works today, will bite later: exit 0
// unless --strict) and fail (exit 1).
const (
	DoctorOK   = "ok"
	DoctorWarn = "warn"
	DoctorFail = "fail"
)

// DoctorCheck is one line of vmha doctor: one check of one host, made from
// one host (From; the leader for the checks it runs itself).
type DoctorCheck struct {
	// Check names the check: fence, reach, storage, clock, keyring, cert,
	// config, version, answer (docs/doctor.md).
	Check   string `json:"check"`
	Host    string `json:"host"`
	From    string `json:"from"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Fix says what to do about a warn or a fail.
	Fix string `json:"fix,omitempty"`
}

// DoctorReport is GET /v1/doctor: when and where it ran, and every check.
type DoctorReport struct {
	Leader   string        `json:"leader"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration"`
	// Nightly is set for the leader's scheduled run (doctor.interval).
	Nightly bool          `json:"nightly,omitempty"`
	OK      int           `json:"ok"`
	Warn    int           `json:"warn"`
	Fail    int           `json:"fail"`
	Checks  []DoctorCheck `json:"checks"`
}

// DoctorFacts is what one host says about itself for the doctor.
type DoctorFacts struct {
	Host string `json:"host"`
	// Time is the host's clock when it answered, Took how long it spent
	// collecting the rest before (the asker takes it off the round trip
	// when it compares clocks).
	Time    time.Time     `json:"time"`
	Took    time.Duration `json:"took"`
	Version string        `json:"version"`
	Witness bool          `json:"witness,omitempty"`
	// Settings are the values of the settings the leader applies
	// cluster-wide, by config key; SettingsHash sums them up.
	Settings     map[string]string `json:"settings"`
	SettingsHash string            `json:"settings_hash"`
	// GossipKeys are the fingerprints of this host's gossip keyring,
	// the primary key first; none when gossip is not encrypted.
	GossipEncrypted bool     `json:"gossip_encrypted"`
	GossipKeys      []string `json:"gossip_keys,omitempty"`
	GossipError     string   `json:"gossip_error,omitempty"`
	// Certs are this host's TLS certificate and CA (none without TLS).
	TLS   bool         `json:"tls"`
	Certs []DoctorCert `json:"certs,omitempty"`
	// Reach is this host's view of the other hosts' live-migration
	// endpoints.
	Reach []DoctorReach `json:"reach,omitempty"`
	// Storage is this host's storage check (nil: no shared storage
	// configured).
	Storage *StorageCheck `json:"storage,omitempty"`
}

// DoctorCert is one certificate of a host: its file, subject and expiry,
// or why it could not be read.
type DoctorCert struct {
	// Kind is cert (the host's own) or ca.
	Kind     string    `json:"kind"`
	File     string    `json:"file"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// DoctorReach is one dial from the answering host to another host's
// libvirt URI or migration address.
type DoctorReach struct {
	Host string `json:"host"`
	// What is libvirt (migration.libvirt_uri) or migration
	// (migration.address).
	What   string        `json:"what"`
	Target string        `json:"target"`
	Dialed string        `json:"dialed,omitempty"`
	OK     bool          `json:"ok"`
	Error  string        `json:"error,omitempty"`
	Took   time.Duration `json:"took"`
}
