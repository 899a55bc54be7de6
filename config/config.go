// Package config loads vmhad's own configuration (this host: names,
// addresses, data directory, hypervisor, BMC, timers) through viper from
// /etc/vmha/vmhad.yaml, VMHA_* environment variables and flags, and
// validates it into a typed struct. The cluster's shared config (hosts, VMs)
// lives in the replicated state, not here.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
	"github.com/vmha/vmha/storage"
)

// DefaultPath is where vmhad looks for its config when no --config is given.
const DefaultPath = "/etc/vmha/vmhad.yaml"

// Daemon is vmhad's configuration.
type Daemon struct {
	NodeName string `mapstructure:"node_name"`
	// BindAddr is the IP every listener binds to; AdvertiseAddr is the IP
	// peers use to reach this host (defaults to BindAddr).
	BindAddr      string `mapstructure:"bind_addr"`
	AdvertiseAddr string `mapstructure:"advertise_addr"`
	Ports         Ports  `mapstructure:"ports"`
	// Join lists serf addresses (host:port) of peers to join at start.
	Join []string `mapstructure:"join"`
	// BootstrapExpect is the number of hosts that form the cluster the
	// first time; raft bootstraps once that many have joined.
	BootstrapExpect int    `mapstructure:"bootstrap_expect"`
	DataDir         string `mapstructure:"data_dir"`
	// Socket is the unix socket the local CLI talks to.
	Socket string `mapstructure:"socket"`
	// MetricsAddr is where Prometheus metrics are served (host:port);
	// empty turns them off.
	MetricsAddr   string `mapstructure:"metrics_addr"`
	HypervisorURI string `mapstructure:"hypervisor_uri"`
	BMC           BMC    `mapstructure:"bmc"`
	// Fence is how the other hosts fence this one beyond (or instead of)
	// the bmc shorthand: devices and ordered levels.
	Fence   Fence   `mapstructure:"fence"`
	Gossip  Gossip  `mapstructure:"gossip"`
	Raft    Raft    `mapstructure:"raft"`
	Fencing Fencing `mapstructure:"fencing"`
	Agent   Agent   `mapstructure:"agent"`
	Log     Log     `mapstructure:"log"`
	Quorum  Quorum  `mapstructure:"quorum"`
	// TLS secures raft and the peer API with mutual TLS under the cluster
	// CA (vmha tls init / vmha tls issue). Empty: plain TCP.
	TLS pki.Files `mapstructure:"tls"`
	// SocketGroup, when set, may use the CLI socket too (mode 0660).
	SocketGroup string `mapstructure:"socket_group"`
	// Admission is open (any host with the gossip key / a cluster
	// certificate may register), closed (only hosts announced with vmha
	// host add, or already members), or auto, the default: open until
	// bootstrap_expect hosts have registered (the cluster formed), closed
	// from then on. The leader applies its own value.
	Admission string `mapstructure:"admission"`
	// Insecure lets vmhad run on a non-loopback bind_addr without mutual
	// TLS or without gossip encryption: anyone who reaches its ports can
	// then act as an operator or a host. For labs only; it is loud in the
	// log, vmha status and the vmha_insecure metric.
	Insecure bool `mapstructure:"insecure"`
	// ClusterName names the cluster (GFS2 lock tables are CLUSTER:FS).
	ClusterName string `mapstructure:"cluster_name"`
	// Storage is the cluster's shared storage (docs/storage.md); the same
	// on every host. A VM's disks must be on it, and a VM runs only where
	// its storage is ready.
	Storage StorageConfig `mapstructure:"storage"`
	// Ping publishes this host's pingd attribute (reachable targets ×
	// multiplier) for placement rules; no targets: no pingd.
	Ping Ping `mapstructure:"ping"`
	// Migration describes how live migrations reach this host.
	Migration Migration `mapstructure:"migration"`
	// Watchdog arms a self-fencing watchdog device (empty device: none).
	Watchdog Watchdog `mapstructure:"watchdog"`
	// Rebalance schedules the nightly rebalancing run by the leader.
	Rebalance RebalanceSchedule `mapstructure:"rebalance"`
	// Witness runs vmhad as a tie-breaking vote only (two-host clusters):
	// no hypervisor, no VMs, nothing to fence.
	Witness bool `mapstructure:"witness"`
	// Alerts are where the leader sends every event of the cluster's
	// event log (docs/alerts.md). The leader applies its own list: keep
	// it the same on every host.
	Alerts []Alert `mapstructure:"alerts"`
	// Doctor schedules the leader's vmha doctor run (config/doctor.go).
	Doctor Doctor `mapstructure:"doctor"`
	// Web serves the web console (config/web.go); off unless web.addr
	// is set.
	Web Web `mapstructure:"web"`
	// Health reads this host's BMC sensors into #health-ipmi
	// (config/health.go, docs/health.md).
	Health Health `mapstructure:"health"`
}

// Alert is one alert target: an executable called as a Pacemaker alert
// agent (Path), or a webhook (Webhook) that receives the event as JSON.
type Alert struct {
	Name    string `mapstructure:"name"`
	Path    string `mapstructure:"path"`
	Webhook string `mapstructure:"webhook"`
	// Recipient is the agent's CRM_alert_recipient (an address, a file).
	Recipient string `mapstructure:"recipient"`
	// Kinds limits the alerts (node, fencing, resource, attribute,
	// cluster, rules, rebalance); empty: all.
	Kinds []string `mapstructure:"kinds"`
	// Env are extra variables for the agent (Pacemaker's instance
	// attributes: cluster_name, email_sender, trap_node_states, ...).
	Env     map[string]string `mapstructure:"env"`
	Timeout time.Duration     `mapstructure:"timeout"`
	// Retries are a webhook's extra tries, with a doubling backoff.
	Retries int `mapstructure:"retries"`
	// CAFile is the PEM CA a webhook's certificate must chain to (empty:
	// the system's); TokenFile holds a bearer token for it (mode 0600).
	CAFile    string `mapstructure:"ca_file"`
	TokenFile string `mapstructure:"token_file"`
	// TimestampFormat is CRM_alert_timestamp's strftime format (default
	// Pacemaker's %H:%M:%S.%06N).
	TimestampFormat string `mapstructure:"timestamp_format"`
}

// StorageConfig is the storage section: the cluster's storage, plus where
// this host reads its mount table (default /proc/mounts) and how often it
// checks readiness and writes its storage heartbeat.
type StorageConfig struct {
	storage.Config `mapstructure:",squash"`
	MountsFile     string        `mapstructure:"mounts_file"`
	Interval       time.Duration `mapstructure:"interval"`
}

// Ping configures the ping health attribute (Pacemaker's ocf:pacemaker:ping).
type Ping struct {
	Targets    []string      `mapstructure:"targets"`
	Multiplier int           `mapstructure:"multiplier"`
	Interval   time.Duration `mapstructure:"interval"`
	Timeout    time.Duration `mapstructure:"timeout"`
	Dampen     time.Duration `mapstructure:"dampen"`
}

// Watchdog is the self-fencing watchdog: vmhad pets Device only while
// this host reached the quorum within Timeout/2.
type Watchdog struct {
	Device  string        `mapstructure:"device"`
	Timeout time.Duration `mapstructure:"timeout"`
}

// RebalanceSchedule runs a rebalance once a day inside Window ("HH:MM-HH:MM",
// local time; empty: never), with these limits. The leader applies its own
// values: keep them the same on every host.
type RebalanceSchedule struct {
	Window   string  `mapstructure:"window"`
	MaxMoves int     `mapstructure:"max_moves"`
	MinGain  float64 `mapstructure:"min_gain"`
	Parallel int     `mapstructure:"parallel"`
}

// ParseWindow reads "HH:MM-HH:MM" as minutes after midnight; the end may be
// before the start (a window across midnight).
func ParseWindow(w string) (start, end int, err error) {
	a, b, ok := strings.Cut(w, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want HH:MM-HH:MM", w)
	}
	parse := func(x string) (int, error) {
		t, err := time.Parse("15:04", strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%q: want HH:MM-HH:MM", w)
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	if start, err = parse(a); err != nil {
		return 0, 0, err
	}
	if end, err = parse(b); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q: the window is empty", w)
	}
	return start, end, nil
}

// Migration is this host's end of live migrations.
type Migration struct {
	// LibvirtURI is how the other hosts' libvirtd reach this host's
	// (qemu+tls://HOST/system). Empty: this host takes no live migration.
	LibvirtURI string `mapstructure:"libvirt_uri"`
	// Address is the migration stream's address, tcp://ADDR (no port:
	// the target picks one from its own range).
	Address string `mapstructure:"address"`
	// Timeout aborts a migration that has not finished (the VM stays on
	// the source).
	Timeout time.Duration `mapstructure:"timeout"`
	// BandwidthMiBps caps the stream (0: unlimited).
	BandwidthMiBps uint64 `mapstructure:"bandwidth_mibps"`
	// MaxDowntime is the longest pause allowed at the switch-over.
	MaxDowntime  time.Duration `mapstructure:"max_downtime"`
	AutoConverge bool          `mapstructure:"auto_converge"`
	// MaxPerTarget caps the moves into one host at once, and MaxCluster
	// those in the whole cluster, over evacuations, rebalancing and the
	// rules together (0: no cap). The leader applies its own values: keep
	// them the same on every host.
	MaxPerTarget int `mapstructure:"max_per_target"`
	MaxCluster   int `mapstructure:"max_cluster"`
}

// No-quorum policies: what a host cut off from the quorum does.
const (
	// PolicyFreeze keeps running VMs and starts nothing (the default).
	PolicyFreeze = "freeze"
	// PolicyStop stops this host's VMs once it has been without quorum for
	// quorum.stop_after.
	PolicyStop = "stop"
	// PolicyIgnore also restarts, without quorum, a VM that crashed here
	// and that this host itself started under its current placement. Only
	// with fencing: the majority must be able to power this host off.
	PolicyIgnore = "ignore"
)

// Quorum holds what a host does when it is cut off from the quorum.
type Quorum struct {
	NoQuorumPolicy string        `mapstructure:"no_quorum_policy"`
	StopAfter      time.Duration `mapstructure:"stop_after"`
	// WaitForAll (corosync's wait_for_all): after a cold start the leader
	// decides nothing (no fence, no placement) until every host of the
	// cluster has been seen alive at once, or this host joins a cluster
	// that already got there.
	WaitForAll bool `mapstructure:"wait_for_all"`
	// TwoNode (corosync's two_node: 1) lets the survivor of a two-host
	// cluster without a witness keep going: when gossip declares the other
	// host failed and there is no raft leader (1 of 2 votes), it fences
	// the other host itself and, only once the power off is confirmed,
	// becomes the only raft voter and recovers the other's VMs. Fencing is
	// the tie-breaker: a split's winner is the host whose own fence.delay is
	// larger. Needs exactly two hosts, no witness, and fencing on both
	// (docs/fencing.md, "Two hosts without a witness"). Set it on both.
	TwoNode bool `mapstructure:"two_node"`
}

// Ports are this host's listeners.
type Ports struct {
	Serf int `mapstructure:"serf"`
	Raft int `mapstructure:"raft"`
	API  int `mapstructure:"api"`
}

// BMC is this host's baseboard management controller, which the other
// hosts use to fence it. The password is read from PasswordFile.
type BMC struct {
	Type         string `mapstructure:"type"`
	Address      string `mapstructure:"address"`
	Port         int    `mapstructure:"port"`
	User         string `mapstructure:"user"`
	PasswordFile string `mapstructure:"password_file"`
	Interface    string `mapstructure:"interface"`
	CipherSuite  int    `mapstructure:"cipher_suite"`
}

// Fence describes this host's fence topology. Devices are named here and
// referenced by name in Levels; the bmc section, when set, is the device
// "bmc" and, unless a level names it, level 1 of its own.
type Fence struct {
	Action      string        `mapstructure:"action"`
	Delay       time.Duration `mapstructure:"delay"`
	RandomDelay time.Duration `mapstructure:"random_delay"`
	Devices     []spec.Device `mapstructure:"-"`
	Levels      [][]string    `mapstructure:"levels"`
}

// BMCDevice is the name the bmc shorthand gets in the fence topology.
const BMCDevice = "bmc"

// FenceSpec is this host's fence topology as a fencing spec (passwords not
// read yet). A host with neither bmc nor fence devices has no level.
func (d *Daemon) FenceSpec() spec.Spec {
	var sp spec.Spec
	levels := d.Fence.Levels
	if d.BMC.Address != "" {
		sp.Devices = append(sp.Devices, spec.Device{Name: BMCDevice, Type: spec.TypeIPMI, PasswordFile: d.BMC.PasswordFile,
			Params: map[string]string{
				"address": d.BMC.Address, "port": strconv.Itoa(d.BMC.Port), "user": d.BMC.User,
				"interface": d.BMC.Interface, "cipher_suite": strconv.Itoa(d.BMC.CipherSuite),
			}})
		named := false
		for _, l := range levels {
			for _, n := range l {
				named = named || n == BMCDevice
			}
		}
		if !named {
			levels = append([][]string{{BMCDevice}}, levels...)
		}
	}
	sp.Devices = append(sp.Devices, d.Fence.Devices...)
	if len(sp.Devices) == 0 && len(levels) == 0 {
		return sp
	}
	sp.Hosts = []spec.Host{{Name: d.NodeName, Levels: levels, Action: d.Fence.Action, Delay: d.Fence.Delay, RandomDelay: d.Fence.RandomDelay}}
	return sp
}

// fenceKeys are the keys of a fence: block (and of the file vmha fence
// devices set reads).
var fenceKeys = map[string]bool{"action": true, "delay": true, "random_delay": true, "devices": true, "levels": true}

// ParseFence reads a fencing spec for host in the format of vmhad.yaml's
// fence: block (action, delay, random_delay, devices, levels; no bmc
// shorthand), strictly: an unknown key, in the block or in a device, is an
// error. It validates the spec (allow_unsafe honoured: the caller decides
// whether the spec may carry it) without reading any password.
func ParseFence(host string, data []byte) (spec.Spec, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(string(data))); err != nil {
		return spec.Spec{}, fmt.Errorf("not valid YAML: %w", err)
	}
	for _, k := range v.AllKeys() {
		if top, _, _ := strings.Cut(k, "."); !fenceKeys[top] {
			return spec.Spec{}, fmt.Errorf("unknown field %q (a fence spec has action, delay, random_delay, devices and levels)", k)
		}
	}
	var f Fence
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: &f, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc()),
	})
	if err != nil {
		return spec.Spec{}, err
	}
	if err := dec.Decode(v.AllSettings()); err != nil {
		return spec.Spec{}, err
	}
	if raw := v.Get("devices"); raw != nil {
		sdec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			Result: &f.Devices, ErrorUnused: true, WeaklyTypedInput: true,
			DecodeHook: mapstructure.StringToTimeDurationHookFunc(),
		})
		if err != nil {
			return spec.Spec{}, err
		}
		if err := sdec.Decode(raw); err != nil {
			return spec.Spec{}, fmt.Errorf("devices: %w", err)
		}
	}
	if len(f.Devices) == 0 {
		return spec.Spec{}, errors.New("devices: none (a fence spec needs at least one device and one level)")
	}
	sp := spec.Spec{Devices: f.Devices, Hosts: []spec.Host{{Name: host, Levels: f.Levels, Action: f.Action, Delay: f.Delay, RandomDelay: f.RandomDelay}}}
	if err := sp.Validate(); err != nil {
		return spec.Spec{}, err
	}
	return sp, nil
}

// Gossip holds serf/memberlist failure-detector timers. The defaults declare
// a crashed host failed in about 1-2 s on a LAN (up to about 2.5 s at 5,000
// hosts). memberlist declares a suspect dead after at least
// suspicion_mult × log10(members) × probe_interval: that is also how long a
// healthy but stalled host has to refute a false suspicion, and a false
// "failed" means a fence. suspicion_mult 3 (memberlist's LAN default is 4)
// was chosen from the simulation's runs on a saturated machine; see
// docs/scale.md, "Failure detection under load", for the measurements and
// the settings per cluster size.
type Gossip struct {
	ProbeInterval  time.Duration `mapstructure:"probe_interval"`
	ProbeTimeout   time.Duration `mapstructure:"probe_timeout"`
	GossipInterval time.Duration `mapstructure:"gossip_interval"`
	SuspicionMult  int           `mapstructure:"suspicion_mult"`
	// EncryptKeyFile holds the base64 gossip key (vmha keygen) that seeds
	// the keyring at the first start; later rotations (vmha gossip keys)
	// are kept in the data directory's keyring. Empty: no encryption.
	EncryptKeyFile string `mapstructure:"encrypt_key_file"`
}

// Raft holds consensus timers.
type Raft struct {
	HeartbeatTimeout time.Duration `mapstructure:"heartbeat_timeout"`
	ElectionTimeout  time.Duration `mapstructure:"election_timeout"`
	LeaderLease      time.Duration `mapstructure:"leader_lease"`
	// MaxVoters bounds the raft voters (an odd number, 3 to 7); the other
	// hosts follow the log as non-voters. Every host must use the same.
	MaxVoters int `mapstructure:"max_voters"`
}

// Fencing holds how long the coordinator tries to fence a lost host.
type Fencing struct {
	Timeout      time.Duration `mapstructure:"timeout"`
	CallTimeout  time.Duration `mapstructure:"call_timeout"`
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// RetryInterval is the pause before fencing a host again after all
	// attempts failed; recovery stays blocked until one succeeds.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
	// CheckInterval is how often the leader asks every fence device for
	// its power status, so that a broken device shows before an incident.
	CheckInterval time.Duration `mapstructure:"check_interval"`
}

// Agent holds the local reconcile loop's timers.
type Agent struct {
	Interval    time.Duration `mapstructure:"interval"`
	StopTimeout time.Duration `mapstructure:"stop_timeout"`
}

// Log configures zerolog.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"` // json or console
}

// Defaults are the embedded defaults every key falls back to.
var Defaults = map[string]any{
	"bind_addr":                 "127.0.0.1",
	"ports.serf":                7946,
	"ports.raft":                7947,
	"ports.api":                 7948,
	"bootstrap_expect":          3,
	"data_dir":                  "/var/lib/vmha",
	"socket":                    "/run/vmha/vmhad.sock",
	"metrics_addr":              "",
	"hypervisor_uri":            "qemu:///system",
	"bmc.type":                  "ipmi",
	"bmc.port":                  623,
	"bmc.interface":             "lanplus",
	"bmc.cipher_suite":          3,
	"gossip.probe_interval":     "200ms",
	"gossip.probe_timeout":      "100ms",
	"gossip.gossip_interval":    "100ms",
	"gossip.suspicion_mult":     3,
	"gossip.encrypt_key_file":   "",
	"raft.heartbeat_timeout":    "500ms",
	"raft.election_timeout":     "500ms",
	"raft.leader_lease":         "250ms",
	"fencing.timeout":           "20s",
	"fencing.call_timeout":      "3s",
	"fencing.poll_interval":     "250ms",
	"fencing.retry_interval":    "5s",
	"fencing.check_interval":    "60s",
	"agent.interval":            "2s",
	"quorum.no_quorum_policy":   PolicyFreeze,
	"raft.max_voters":           5,
	"ping.multiplier":           100,
	"cluster_name":              "vmha",
	"storage.interval":          "5s",
	"ping.interval":             "10s",
	"ping.timeout":              "2s",
	"ping.dampen":               "5s",
	"migration.libvirt_uri":     "",
	"migration.address":         "",
	"migration.timeout":         "10m",
	"migration.bandwidth_mibps": 0,
	"migration.max_downtime":    "300ms",
	"migration.auto_converge":   false,
	"migration.max_per_target":  2,
	"rebalance.window":          "",
	"watchdog.device":           "",
	"watchdog.timeout":          "60s",
	"rebalance.max_moves":       10,
	"rebalance.min_gain":        0.01,
	"rebalance.parallel":        2,
	"migration.max_cluster":     0,
	"quorum.stop_after":         "30s",
	"quorum.wait_for_all":       false,
	"quorum.two_node":           false,
	"witness":                   false,
	"socket_group":              "",
	"insecure":                  false,
	"admission":                 "auto",
	"agent.stop_timeout":        "30s",
	"log.level":                 "info",
	"log.format":                "json",
}

// Flags declares vmhad's command-line overrides on fs. Flag names are the
// config keys with '.' and '_' spelled '-'.
func Flags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (default "+DefaultPath+" when it exists)")
	fs.String("node-name", "", "this host's name in the cluster (default: hostname)")
	fs.String("bind-addr", "", "IP address to bind every listener to")
	fs.String("advertise-addr", "", "IP address peers use to reach this host")
	fs.Int("ports-serf", 0, "gossip port")
	fs.Int("ports-raft", 0, "raft port")
	fs.Int("ports-api", 0, "peer API port")
	fs.StringSlice("join", nil, "gossip address (host:port) of a peer to join; repeatable")
	fs.Int("bootstrap-expect", 0, "number of hosts that form the cluster the first time")
	fs.String("data-dir", "", "directory for the replicated state")
	fs.String("socket", "", "unix socket for the local CLI")
	fs.String("hypervisor-uri", "", "libvirt URI of this host's hypervisor")
	fs.String("log-level", "", "debug, info, warn or error")
	fs.String("metrics-addr", "", "host:port to serve Prometheus metrics on (empty: off)")
	fs.Bool("witness", false, "run as a witness: a quorum vote only, no hypervisor and no VMs (two-host clusters)")
}

// flagKeys maps flag names to config keys.
var flagKeys = map[string]string{
	"node-name": "node_name", "bind-addr": "bind_addr", "advertise-addr": "advertise_addr",
	"ports-serf": "ports.serf", "ports-raft": "ports.raft", "ports-api": "ports.api",
	"join": "join", "bootstrap-expect": "bootstrap_expect", "data-dir": "data_dir",
	"socket": "socket", "hypervisor-uri": "hypervisor_uri", "log-level": "log.level",
	"metrics-addr": "metrics_addr", "witness": "witness",
}

// Problems is every problem found, in the order found; Error puts one on
// each line. Load returns it when it found more than one.
type Problems []error

func (p Problems) Error() string {
	s := make([]string, len(p))
	for i, e := range p {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives errors.Is and errors.As every problem.
func (p Problems) Unwrap() []error { return p }

// Err is nil without problems, the problem itself with one, else p.
func (p Problems) Err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return p
}

// Load reads the config: embedded defaults, then the file (path, or
// DefaultPath if it exists), then VMHA_* environment variables (VMHA_NODE_NAME,
// VMHA_BMC_ADDRESS, ...), then flags that were set. Decoding is strict: a
// duration needs a unit (20s, 500ms), a whole number is not a bool or a
// decimal, text is not a number, and an unknown key is an error. It returns
// every problem it finds (Problems when more than one), each naming the file
// and the field.
func Load(path string, fs *pflag.FlagSet) (*Daemon, error) {
	d, err := LoadForCheck(path, fs)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// LoadForCheck is Load for vmhad --check-config: with the problems it also
// returns the config as far as it decoded (nil when the file could not be
// read or has unknown keys; a field that did not decode holds its zero
// value), so that the files it names can be checked as well. Never start
// anything from a config that came with an error.
func LoadForCheck(path string, fs *pflag.FlagSet) (*Daemon, error) {
	v := newViper()
	source, err := readConfigFile(v, path)
	if err != nil {
		return nil, err
	}
	setFlags, err := bindSetFlags(v, fs)
	if err != nil {
		return nil, err
	}
	where := origins(setFlags).where
	d, problems, failed, err := decodeDaemon(v, source, where)
	if err != nil {
		return nil, err
	}
	if d.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("config %s: node_name is not set and the hostname is unknown: %w", source, err)
		}
		d.NodeName = strings.SplitN(h, ".", 2)[0]
	}
	if d.AdvertiseAddr == "" {
		d.AdvertiseAddr = d.BindAddr
	}
	for _, e := range validate(d) {
		// A field that failed to decode holds its zero value: validation
		// would report it again, differently.
		if mentions(e.Error(), failed) {
			continue
		}
		if field, rest, ok := strings.Cut(e.Error(), ": "); ok && !strings.Contains(field, " ") && where(field) != "" {
			problems = append(problems, fmt.Errorf("config %s: %s%s: %s", source, field, where(field), rest))
			continue
		}
		problems = append(problems, fmt.Errorf("config %s: %w", source, e))
	}
	if len(problems) > 0 {
		return d, problems.Err()
	}
	return d, nil
}

// newViper is a viper with vmhad's defaults and environment variables.
func newViper() *viper.Viper {
	v := viper.New()
	for k, val := range Defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("VMHA")
	// VMHA_SOCKET is the CLI's (the socket vmha talks to): a daemon started
	// from a shell that exported it for vmha must not move its own socket,
	// so the daemon's is VMHAD_SOCKET.
	v.SetEnvKeyReplacer(strings.NewReplacer("VMHA_SOCKET_GROUP", "VMHA_SOCKET_GROUP", "VMHA_SOCKET", "VMHAD_SOCKET", ".", "_"))
	v.AutomaticEnv()
	// AutomaticEnv only sees keys viper knows; bind the ones without defaults.
	for _, k := range envOnlyKeys {
		_ = v.BindEnv(k)
	}
	return v
}

// readConfigFile reads the file at path (DefaultPath when path is empty
// and that file exists) into v and refuses unknown keys. It returns the
// source to name in messages: the path, or "defaults" without a file.
func readConfigFile(v *viper.Viper, path string) (source string, err error) {
	if path == "" {
		if _, err := os.Stat(DefaultPath); err == nil {
			path = DefaultPath
		}
	}
	if path == "" {
		return "defaults", nil
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("config %s: %w", path, pe.Err)
		}
		return "", fmt.Errorf("config %s: not valid YAML: %w", path, err)
	}
	var unknown Problems
	for _, err := range checkKeys(v) {
		unknown = append(unknown, fmt.Errorf("config %s: %w", path, err))
	}
	if len(unknown) > 0 {
		return "", unknown.Err()
	}
	return path, nil
}

// bindSetFlags binds to v the flags of fs that were set and name a config
// key; it returns the flag name of each such key.
func bindSetFlags(v *viper.Viper, fs *pflag.FlagSet) (map[string]string, error) {
	setFlags := map[string]string{} // config key -> flag name
	if fs == nil {
		return setFlags, nil
	}
	var ferr error
	fs.Visit(func(f *pflag.Flag) {
		key, ok := flagKeys[f.Name]
		if !ok {
			return
		}
		setFlags[key] = f.Name
		if err := v.BindPFlag(key, f); err != nil && ferr == nil {
			ferr = err
		}
	})
	return setFlags, ferr
}

// origins maps config keys to the flag that set them.
type origins map[string]string

// where names the source of a value that is not the file's: the
// environment variable or flag that set it.
func (o origins) where(field string) string {
	key := field
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	if f, ok := o[key]; ok {
		return " (flag --" + f + ")"
	}
	env := "VMHA_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if _, ok := os.LookupEnv(env); ok && viperEnvKey(key) {
		return " (environment " + env + ")"
	}
	return ""
}

// decodeDaemon decodes v's settings strictly into a Daemon. Each field
// that does not decode is a problem (named with where), and is kept in
// failed; err is for a decoder that cannot be built.
func decodeDaemon(v *viper.Viper, source string, where func(string) string) (d *Daemon, problems Problems, failed map[string]bool, err error) {
	settings := v.AllSettings()
	// Fence devices are decoded on their own below (Daemon.Fence.Devices
	// has no mapstructure name).
	var rawDevices any
	if f, ok := settings["fence"].(map[string]any); ok {
		rawDevices = f["devices"]
		delete(f, "devices")
	}
	d = &Daemon{}
	failed = map[string]bool{}
	addDecode := func(err error) {
		for _, p := range decodeProblems(err) {
			failed[p.field] = true
			problems = append(problems, fmt.Errorf("config %s: %s%s: %s", source, p.field, where(p.field), p.msg))
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      d,
		ErrorUnused: true,
		DecodeHook:  strictHook(false),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	addDecode(dec.Decode(settings))
	// Fence devices: a mistyped key in a device (passwd_file) must not
	// silently leave a device without a password. Their params are free
	// text passed to the device, so a number or true there is that text.
	if rawDevices != nil {
		sdec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			Result: &d.Fence.Devices, ErrorUnused: true, RootName: "fence.devices",
			DecodeHook: strictHook(true),
		})
		if err != nil {
			return nil, nil, nil, err
		}
		addDecode(sdec.Decode(rawDevices))
	}
	return d, problems, failed, nil
}

// envOnlyKeys are the keys without a default that still come from the
// environment.
var envOnlyKeys = []string{"node_name", "advertise_addr", "join", "bmc.address", "bmc.user", "bmc.password_file"}

// viperEnvKey reports whether viper reads key from the environment.
func viperEnvKey(key string) bool {
	if _, ok := Defaults[key]; ok {
		return true
	}
	return slices.Contains(envOnlyKeys, key)
}

// mentions reports whether msg is about one of the fields.
func mentions(msg string, fields map[string]bool) bool {
	for f := range fields {
		if strings.Contains(msg, f) {
			return true
		}
	}
	return false
}

// decodeProblem is one field that could not be decoded.
type decodeProblem struct{ field, msg string }

// decodeProblems flattens mapstructure's error tree into one problem per
// field, in the order found.
func decodeProblems(err error) []decodeProblem {
	var out []decodeProblem
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			switch w := e.(type) {
			case interface{ Unwrap() []error }:
				for _, x := range w.Unwrap() {
					walk(x)
				}
			case interface{ Unwrap() error }:
				walk(w.Unwrap())
			default:
				out = append(out, decodeProblem{"(config)", e.Error()})
			}
			return
		}
		inner := de.Unwrap()
		var nested *mapstructure.DecodeError
		if errors.As(inner, &nested) {
			walk(inner)
			return
		}
		field, msg := de.Name(), inner.Error()
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			var q []string
			for _, k := range strings.Split(keys, ", ") {
				q = append(q, strconv.Quote(k))
			}
			if len(q) == 1 {
				msg = "unknown field " + q[0]
			} else {
				msg = "unknown fields " + strings.Join(q, ", ")
			}
		}
		var ute *mapstructure.UnconvertibleTypeError
		if errors.As(inner, &ute) {
			msg = fmt.Sprintf("%s, want %s", describe(ute.Value), want(ute.Expected.Type()))
		}
		if field == "" || field == "config.Daemon" {
			field = "(config)"
		}
		out = append(out, decodeProblem{field, msg})
	}
	walk(err)
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

// strictHook converts what YAML, the environment (always text) and flags
// give into a field's type, and refuses what would be a silent guess: a
// duration without a unit (20 would be 20 ns), true or 1.5 for a whole
// number, a number for text. paramText lets numbers and booleans be text
// (fence device params, passed on as text).
func strictHook(paramText bool) mapstructure.DecodeHookFuncValue {
	return func(from, to reflect.Value) (any, error) {
		if !from.IsValid() || !from.CanInterface() {
			return nil, nil
		}
		data := from.Interface()
		if to.Type() == durationType {
			return toDuration(data)
		}
		switch to.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return toInt(data)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n, err := toInt(data)
			if err == nil && reflect.ValueOf(n).Int() < 0 {
				return nil, fmt.Errorf("%s is negative, want 0 or more", describe(data))
			}
			return n, err
		case reflect.Float32, reflect.Float64:
			return toFloat(data)
		case reflect.Bool:
			return toBool(data)
		case reflect.String:
			return toText(data, paramText)
		case reflect.Slice:
			if s, ok := data.(string); ok && to.Type().Elem().Kind() == reflect.String {
				if strings.TrimSpace(s) == "" {
					return []string{}, nil
				}
				return strings.Split(s, ","), nil
			}
			if k := from.Kind(); k != reflect.Slice && k != reflect.Array {
				return nil, fmt.Errorf("%s, want %s", describe(data), want(to.Type()))
			}
		case reflect.Struct, reflect.Map:
			if from.Kind() != reflect.Map && from.Kind() != reflect.Struct {
				return nil, fmt.Errorf("%s, want %s", describe(data), want(to.Type()))
			}
		}
		return data, nil
	}
}

// number formats a YAML number as written: a decimal keeps its point.
func number(data any) (string, bool) {
	switch x := data.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	case float32:
		return number(float64(x))
	case float64:
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.ContainsAny(s, ".eEInN") {
			s += ".0"
		}
		return s, true
	}
	return "", false
}

// describe names a raw value in an error. Text is quoted; a value that is
// not a scalar is named by its shape, never dumped.
func describe(data any) string {
	if n, ok := number(data); ok {
		return n
	}
	switch x := data.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "nothing"
	}
	switch reflect.ValueOf(data).Kind() {
	case reflect.Map, reflect.Struct:
		return "a map"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return fmt.Sprintf("a %T", data)
}

// want names a target type in an error.
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration with a unit (20s, 500ms, 2m)"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map (key: value)"
	}
	return t.String()
}

func toDuration(data any) (any, error) {
	if n, ok := number(data); ok {
		return nil, fmt.Errorf("%s has no unit (write %ss or %sms)", n, n, n)
	}
	switch x := data.(type) {
	case time.Duration:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		// "20" from the environment is the same mistake as 20 in YAML
		// (time.ParseDuration would even take a bare "0").
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return nil, fmt.Errorf("%s has no unit (write %ss or %sms)", s, s, s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not a duration (write e.g. 20s, 500ms or 2m)", describe(x))
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s, want a duration with a unit (20s, 500ms, 2m)", describe(data))
}

func toInt(data any) (any, error) {
	switch x := data.(type) {
	case int, int8, int16, int32, int64:
		return reflect.ValueOf(x).Int(), nil
	case uint, uint8, uint16, uint32, uint64:
		u := reflect.ValueOf(x).Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("%d is too large", u)
		}
		return int64(u), nil
	case float32, float64:
		return nil, fmt.Errorf("%s is a decimal number, want a whole number", describe(x))
	case bool:
		return nil, fmt.Errorf("%t is not a number, want a whole number", x)
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a whole number", describe(x))
		}
		return n, nil
	}
	return nil, fmt.Errorf("%s, want a whole number", describe(data))
}

func toFloat(data any) (any, error) {
	switch x := data.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case int, int8, int16, int32, int64:
		return float64(reflect.ValueOf(x).Int()), nil
	case uint, uint8, uint16, uint32, uint64:
		return float64(reflect.ValueOf(x).Uint()), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", describe(x))
		}
		return f, nil
	case bool:
		return nil, fmt.Errorf("%t is not a number", x)
	}
	return nil, fmt.Errorf("%s, want a number", describe(data))
}

func toBool(data any) (any, error) {
	switch x := data.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf("%s is not true or false", describe(x))
		}
		return b, nil
	}
	return nil, fmt.Errorf("%s is not true or false", describe(data))
}

func toText(data any, paramText bool) (any, error) {
	switch x := data.(type) {
	case string:
		return x, nil
	case bool:
		if paramText {
			return strconv.FormatBool(x), nil
		}
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		if paramText {
			return fmt.Sprint(x), nil
		}
	}
	if n, ok := number(data); ok {
		return nil, fmt.Errorf("%s is a number, want text (quote it: \"%s\")", n, n)
	}
	if b, ok := data.(bool); ok {
		return nil, fmt.Errorf("%t is a boolean, want text (quote it: \"%t\")", b, b)
	}
	return nil, fmt.Errorf("%s, want text", describe(data))
}

// knownKeys are the keys a config file may hold; a typo is an error rather
// than a silently ignored setting.
func knownKeys() map[string]bool {
	m := map[string]bool{}
	for k := range Defaults {
		m[k] = true
	}
	for _, k := range flagKeys {
		m[k] = true
	}
	for _, k := range []string{"storage.filesystems", "storage.volume_groups", "storage.mounts_file", "ping.targets", "bmc.address", "bmc.user", "bmc.password_file", "tls.ca_file", "tls.cert_file", "tls.key_file",
		"fence.action", "fence.delay", "fence.random_delay", "fence.devices", "fence.levels", "alerts"} {
		m[k] = true
	}
	return m
}

func checkKeys(v *viper.Viper) []error {
	known := knownKeys()
	keys := v.AllKeys()
	slices.Sort(keys)
	var errs []error
next:
	for _, k := range keys {
		if known[k] {
			continue
		}
		for kk := range known {
			if strings.HasPrefix(kk, k+".") {
				errs = append(errs, fmt.Errorf("%s: %s, want a map (key: value)", k, describe(v.Get(k))))
				continue next
			}
		}
		errs = append(errs, fmt.Errorf("unknown field %q", k))
	}
	return errs
}

// Validate checks every field and names every wrong one (Problems when
// more than one).
func (d *Daemon) Validate() error {
	return Problems(validate(d)).Err()
}

// secureByDefault refuses a daemon that others can reach without mutual
// TLS and gossip encryption, unless insecure: true says so on purpose. On
// loopback only this machine reaches it (the demo, the test labs).
func secureByDefault(d *Daemon) []error {
	if d.Insecure || (isLoopback(d.BindAddr) && isLoopback(d.AdvertiseAddr)) {
		return nil
	}
	var missing []string
	if !d.TLS.Enabled() {
		missing = append(missing, "mutual TLS (tls: ca_file, cert_file, key_file)")
	}
	if d.Gossip.EncryptKeyFile == "" {
		missing = append(missing, "gossip encryption (gossip.encrypt_key_file)")
	}
	if len(missing) == 0 {
		return nil
	}
	return []error{fmt.Errorf("bind_addr: %s is reachable from the network, but %s not configured: without them anyone who reaches this host can fence hosts and run VMs; vmha cluster init makes the certificates and the key (insecure: true runs without, for a lab only)", d.BindAddr, strings.Join(missing, " and ")+map[bool]string{true: " are", false: " is"}[len(missing) > 1])}
}

func isLoopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// validate returns one error per wrong field, each naming it.
func validate(d *Daemon) []error {
	var errs []error
	errs = append(errs, validateAddresses(d)...)
	errs = append(errs, validateSafety(d)...)
	errs = append(errs, validateTwoNode(d)...)
	errs = append(errs, validateServices(d)...)
	errs = append(errs, validateLimits(d)...)
	errs = append(errs, validateTimers(d)...)
	errs = append(errs, validateLog(d)...)
	return errs
}

// validateAddresses checks the host's name, addresses, ports, peers, data
// directory, socket and hypervisor URI.
func validateAddresses(d *Daemon) []error {
	var errs []error
	if err := model.ValidateName("node", d.NodeName); err != nil {
		errs = append(errs, fmt.Errorf("node_name: %w", err))
	}
	if net.ParseIP(d.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("bind_addr: %q is not an IP address", d.BindAddr))
	}
	if net.ParseIP(d.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("advertise_addr: %q is not an IP address", d.AdvertiseAddr))
	}
	ports := map[string]int{"ports.serf": d.Ports.Serf, "ports.raft": d.Ports.Raft, "ports.api": d.Ports.API}
	seen := map[int]string{}
	for _, k := range []string{"ports.serf", "ports.raft", "ports.api"} {
		p := ports[k]
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port (1-65535)", k, p))
			continue
		}
		if other, dup := seen[p]; dup {
			errs = append(errs, fmt.Errorf("%s: port %d is already used by %s", k, p, other))
		}
		seen[p] = k
	}
	for i, j := range d.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("join[%d]: %q is not host:port", i, j))
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("join[%d]: %q has no valid port", i, j))
		}
	}
	if d.BootstrapExpect < 1 {
		errs = append(errs, fmt.Errorf("bootstrap_expect: %d, must be at least 1", d.BootstrapExpect))
	}
	if d.DataDir == "" {
		errs = append(errs, errors.New("data_dir: empty"))
	}
	if d.MetricsAddr != "" {
		host, port, err := net.SplitHostPort(d.MetricsAddr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
			errs = append(errs, fmt.Errorf("metrics_addr: %q is not IP:port (or :port)", d.MetricsAddr))
		}
	}
	if d.Socket == "" {
		errs = append(errs, errors.New("socket: empty"))
	}
	if d.HypervisorURI == "" || !strings.Contains(d.HypervisorURI, ":") {
		errs = append(errs, fmt.Errorf("hypervisor_uri: %q is not a libvirt URI (e.g. qemu:///system)", d.HypervisorURI))
	}
	return errs
}

// validateTwoNode checks what quorum.two_node needs on this host: a
// hypervisor host (not a witness) of a two-host cluster that the other
// host can fence. What needs the cluster (two registered hosts, both
// fence topologies, fencing on) is checked at run time and reported by
// vmha status.
func validateTwoNode(d *Daemon) []error {
	if !d.Quorum.TwoNode {
		return nil
	}
	var errs []error
	if d.Witness {
		errs = append(errs, errors.New("quorum.two_node: true on a witness: two_node is the way to run two hosts without a witness; turn one of them off"))
	}
	if len(d.FenceSpec().Hosts) == 0 {
		errs = append(errs, errors.New("quorum.two_node: needs this host's fence devices (bmc, or fence.devices and fence.levels): in a split the other host must be able to power this one off before it takes over, and two_node without fencing is refused"))
	}
	if d.BootstrapExpect != 2 {
		errs = append(errs, fmt.Errorf("quorum.two_node: bootstrap_expect is %d; two_node is for exactly two hosts (bootstrap_expect: 2)", d.BootstrapExpect))
	}
	if d.Raft.MaxVoters < 2 {
		errs = append(errs, fmt.Errorf("quorum.two_node: raft.max_voters is %d; both hosts must vote (at least 2)", d.Raft.MaxVoters))
	}
	return errs
}

// validateSafety checks what keeps VMs from running twice: the BMC, the
// no-quorum policy, TLS and storage.
func validateSafety(d *Daemon) []error {
	var errs []error
	if err := d.BMC.validate(); err != nil {
		errs = append(errs, err)
	}
	switch d.Quorum.NoQuorumPolicy {
	case PolicyFreeze, PolicyStop:
	case PolicyIgnore:
		if len(d.FenceSpec().Hosts) == 0 {
			errs = append(errs, errors.New("quorum.no_quorum_policy: ignore is allowed only on a host the others can fence (set bmc or fence): without a fence, a cut-off host that keeps restarting VMs may run them twice"))
		}
	default:
		errs = append(errs, fmt.Errorf("quorum.no_quorum_policy: %q, want freeze, stop or ignore", d.Quorum.NoQuorumPolicy))
	}
	if d.TLS.Enabled() {
		if _, err := d.TLS.Config(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.Storage.Validate(); err != nil {
		errs = append(errs, each("storage: ", err)...)
	}
	return errs
}

// validateServices checks the cluster name, ping, migration transport,
// watchdog, admission, and that a host reachable from the network is
// secured.
func validateServices(d *Daemon) []error {
	var errs []error
	if err := model.ValidateName("cluster", d.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("cluster_name: %w", err))
	}
	if d.Ping.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("ping.multiplier: %d, must be at least 1", d.Ping.Multiplier))
	}
	for i, t := range d.Ping.Targets {
		if strings.TrimSpace(t) == "" || (strings.ContainsAny(t, " /:") && net.ParseIP(t) == nil) {
			errs = append(errs, fmt.Errorf("ping.targets[%d]: %q is not a host name or IP address", i, t))
		}
	}
	if a := d.Migration.Address; a != "" && !strings.HasPrefix(a, "tcp://") {
		errs = append(errs, fmt.Errorf("migration.address: %q, want tcp://ADDR", a))
	}
	if u := d.Migration.LibvirtURI; u != "" && !strings.Contains(u, "://") {
		errs = append(errs, fmt.Errorf("migration.libvirt_uri: %q is not a libvirt URI", u))
	}
	if w := d.Watchdog; w.Device != "" && (w.Timeout < time.Second || w.Timeout > time.Hour || w.Timeout%time.Second != 0) {
		errs = append(errs, fmt.Errorf("watchdog.timeout: %v, want whole seconds from 1s to 1h", w.Timeout))
	}
	if d.Admission != "open" && d.Admission != "closed" && d.Admission != "auto" {
		errs = append(errs, fmt.Errorf("admission: %q, want auto, open or closed", d.Admission))
	}
	errs = append(errs, secureByDefault(d)...)
	errs = append(errs, validateAlerts(d.Alerts)...)
	errs = append(errs, validateDoctor(d.Doctor)...)
	errs = append(errs, validateWeb(d.Web)...)
	errs = append(errs, validateHealth(d.Health, d.BMC)...)
	return errs
}

// validateLimits checks rebalance and migration caps, raft voters, the
// no-quorum stop delay and this host's fence topology.
func validateLimits(d *Daemon) []error {
	var errs []error
	if w := d.Rebalance.Window; w != "" {
		if _, _, err := ParseWindow(w); err != nil {
			errs = append(errs, fmt.Errorf("rebalance.window: %w", err))
		}
	}
	if d.Rebalance.MaxMoves < 0 {
		errs = append(errs, fmt.Errorf("rebalance.max_moves: %d, want 0 (no cap) or more", d.Rebalance.MaxMoves))
	}
	if d.Rebalance.MinGain < 0 || math.IsNaN(d.Rebalance.MinGain) || math.IsInf(d.Rebalance.MinGain, 0) {
		errs = append(errs, fmt.Errorf("rebalance.min_gain: %v, want a number >= 0", d.Rebalance.MinGain))
	}
	if d.Rebalance.Parallel < 1 {
		errs = append(errs, fmt.Errorf("rebalance.parallel: %d, want 1 or more", d.Rebalance.Parallel))
	}
	if d.Migration.MaxPerTarget < 0 {
		errs = append(errs, fmt.Errorf("migration.max_per_target: %d, want 0 (no cap) or more", d.Migration.MaxPerTarget))
	}
	if d.Migration.MaxCluster < 0 {
		errs = append(errs, fmt.Errorf("migration.max_cluster: %d, want 0 (no cap) or more", d.Migration.MaxCluster))
	}
	if d.Raft.MaxVoters < 1 || d.Raft.MaxVoters > 15 {
		errs = append(errs, fmt.Errorf("raft.max_voters: %d, want 1-15 (3, 5 or 7 in practice)", d.Raft.MaxVoters))
	}
	if d.Quorum.StopAfter < 3*d.Agent.Interval {
		errs = append(errs, fmt.Errorf("quorum.stop_after: %v, must be at least 3 × agent.interval (%v) so that a short hiccup does not stop VMs", d.Quorum.StopAfter, d.Agent.Interval))
	}
	if sp := d.FenceSpec(); len(sp.Hosts) > 0 {
		// This host's own fence topology travels to the leader in its
		// registration, a peer's message: the allow-lists apply and
		// allow_unsafe is refused (only vmha fence devices set may).
		if err := sp.ValidateUntrusted(); err != nil {
			errs = append(errs, each("fence: ", err)...)
		}
	}
	return errs
}

// validateTimers checks that every interval and timeout is positive and
// that the gossip and raft timers are consistent.
func validateTimers(d *Daemon) []error {
	var errs []error
	durs := []struct {
		key string
		v   time.Duration
	}{
		{"gossip.probe_interval", d.Gossip.ProbeInterval}, {"gossip.probe_timeout", d.Gossip.ProbeTimeout},
		{"gossip.gossip_interval", d.Gossip.GossipInterval}, {"raft.heartbeat_timeout", d.Raft.HeartbeatTimeout},
		{"raft.election_timeout", d.Raft.ElectionTimeout}, {"raft.leader_lease", d.Raft.LeaderLease},
		{"fencing.timeout", d.Fencing.Timeout}, {"fencing.call_timeout", d.Fencing.CallTimeout},
		{"fencing.poll_interval", d.Fencing.PollInterval}, {"fencing.retry_interval", d.Fencing.RetryInterval},
		{"fencing.check_interval", d.Fencing.CheckInterval},
		{"agent.interval", d.Agent.Interval}, {"agent.stop_timeout", d.Agent.StopTimeout},
		{"quorum.stop_after", d.Quorum.StopAfter}, {"migration.timeout", d.Migration.Timeout},
		{"migration.max_downtime", d.Migration.MaxDowntime}, {"ping.interval", d.Ping.Interval}, {"storage.interval", d.Storage.Interval},
		{"ping.timeout", d.Ping.Timeout}, {"ping.dampen", d.Ping.Dampen},
	}
	for _, x := range durs {
		if x.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v, must be positive", x.key, x.v))
		}
	}
	if d.Gossip.ProbeTimeout >= d.Gossip.ProbeInterval {
		errs = append(errs, fmt.Errorf("gossip.probe_timeout: %v must be shorter than gossip.probe_interval %v", d.Gossip.ProbeTimeout, d.Gossip.ProbeInterval))
	}
	if d.Gossip.SuspicionMult < 1 {
		errs = append(errs, fmt.Errorf("gossip.suspicion_mult: %d, must be at least 1", d.Gossip.SuspicionMult))
	}
	if d.Raft.LeaderLease > d.Raft.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raft.leader_lease: %v must not exceed raft.heartbeat_timeout %v", d.Raft.LeaderLease, d.Raft.HeartbeatTimeout))
	}
	return errs
}

// validateLog checks the log level and format.
func validateLog(d *Daemon) []error {
	var errs []error
	switch d.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q, want debug, info, warn or error", d.Log.Level))
	}
	switch d.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q, want json or console", d.Log.Format))
	}
	return errs
}

// each prefixes every error that err joins (errors.Join), or err itself.
func each(prefix string, err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{fmt.Errorf("%s%w", prefix, err)}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, each(prefix, e)...)
	}
	return out
}

func (b BMC) validate() error {
	if b.Address == "" {
		// A host without a BMC cannot be fenced; the coordinator reports
		// that and keeps its VMs' recovery blocked.
		return nil
	}
	if b.Type != "ipmi" {
		return fmt.Errorf("bmc.type: %q, only ipmi is supported", b.Type)
	}
	if b.Port < 1 || b.Port > 65535 {
		return fmt.Errorf("bmc.port: %d is not a port", b.Port)
	}
	if b.User == "" {
		return errors.New("bmc.user: empty while bmc.address is set")
	}
	if b.PasswordFile == "" {
		return errors.New("bmc.password_file: empty while bmc.address is set")
	}
	if b.Interface != "lanplus" && b.Interface != "lan" {
		return fmt.Errorf("bmc.interface: %q, want lanplus or lan", b.Interface)
	}
	if b.CipherSuite < 0 || b.CipherSuite > 17 {
		return fmt.Errorf("bmc.cipher_suite: %d, want 0-17", b.CipherSuite)
	}
	return nil
}
