package decide

import "github.com/vmha/vmha/clusterspec"

// GuestPolicyOf is VM vm's guest monitoring (guest-monitor,
// guest-heartbeat-timeout, guest-max-restarts, guest-restart-window):
// cluster.yaml's for the VM, else off. rules may be nil. The host agent
// reads it to decide, with reconcile.GuestRestart, whether a guest that
// crashed or hung on its host starts again there.
func GuestPolicyOf(rules *Rules, vm string) clusterspec.GuestPolicy {
	if rules == nil || rules.Spec == nil {
		return clusterspec.VM{}.Guest()
	}
	return rules.Spec.GuestOf(vm)
}
