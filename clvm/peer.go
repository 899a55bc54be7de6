package clvm

import (
	"fmt"
	"slices"
)

// CheckPeerCommand accepts exactly the commands a Manager sends to another
// host's agent (lvs with its report columns over VG/LV names; lvchange with
// one activation mode and one VG/LV) and refuses anything else. A peer that
// runs what it is sent must not become a remote shell.
func CheckPeerCommand(name string, args []string) error {
	switch name {
	case "lvs":
		head := []string{"--reportformat", "json", "--binary", "-o", lvsFields}
		if len(args) <= len(head) || !slices.Equal(args[:len(head)], head) {
			return fmt.Errorf("lvs %v: not the report vmha asks for", args)
		}
		return checkRefs("(peer request)", args[len(head):])
	case "lvchange":
		if len(args) != 2 {
			return fmt.Errorf("lvchange %v: want one mode and one VG/LV", args)
		}
		switch args[0] {
		case "-aey", "-asy", "-an":
		default:
			return fmt.Errorf("lvchange mode %q: want -aey, -asy or -an", args[0])
		}
		return checkRefs("(peer request)", args[1:])
	}
	return fmt.Errorf("command %q: a peer may only ask for lvs or lvchange", name)
}
