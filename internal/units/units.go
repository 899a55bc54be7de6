// Package units writes sizes for people, the same way wherever vmha shows
// them (status problems, the web console).
package units

import "fmt"

// Bytes is n bytes for people, in powers of 1024: 512 B, 3.4 MiB, 2.0 GiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
