// Package xmldiff shows how two domain definitions differ, for people: a
// unified line diff (Unified, a longest-common-subsequence diff of lines)
// and the normalisation that makes libvirt's XML of a domain comparable
// with the XML vmha replicates (Normalize).
package xmldiff

import (
	"fmt"
	"strings"
)

// maxCells bounds the LCS table (lines of a × lines of b): past it, the
// texts are shown as replaced in full rather than spending memory on a
// minimal diff. Domain XML is at most 256 KiB, a few thousand lines.
const maxCells = 16 << 20

// Unified is a unified diff from a (named nameA) to b (nameB) with three
// lines of context, "" when they are equal. Lines are compared exactly.
func Unified(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	la, lb := splitLines(a), splitLines(b)
	ops := diffLines(la, lb)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	for _, h := range hunks(ops, 3) {
		sb.WriteString(h)
	}
	return sb.String()
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// op is one line of the edit script: ' ' kept, '-' only in a, '+' only in b.
type op struct {
	kind byte
	line string
}

// diffLines is the edit script of a longest common subsequence of lines
// (common prefix and suffix taken off first).
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []op
	for _, l := range a[:pre] {
		out = append(out, op{' ', l})
	}
	out = append(out, lcs(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		out = append(out, op{' ', l})
	}
	return out
}

func lcs(a, b []string) []op {
	n, m := len(a), len(b)
	var out []op
	if n*m > maxCells || n == 0 || m == 0 {
		for _, l := range a {
			out = append(out, op{'-', l})
		}
		for _, l := range b {
			out = append(out, op{'+', l})
		}
		return out
	}
	// t[i][j] is the LCS length of a[i:] and b[j:].
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, op{' ', a[i]})
			i, j = i+1, j+1
		case t[i+1][j] >= t[i][j+1]:
			out = append(out, op{'-', a[i]})
			i++
		default:
			out = append(out, op{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, op{'-', a[i]})
	}
	for ; j < m; j++ {
		out = append(out, op{'+', b[j]})
	}
	return out
}

// hunks groups the changes with ctx lines of context around each, in the
// unified format (@@ -start,count +start,count @@).
func hunks(ops []op, ctx int) []string {
	var out []string
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-ctx)
		end := i
		// Extend while the next change is within 2*ctx kept lines.
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			k := end
			for k < len(ops) && ops[k].kind == ' ' {
				k++
			}
			if k == len(ops) || k-end > 2*ctx {
				end = min(len(ops), end+ctx)
				break
			}
			end = k
		}
		// Line numbers (1-based) where the hunk starts in a and b.
		la, lb := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				la++
			}
			if o.kind != '-' {
				lb++
			}
		}
		var na, nb int
		var body strings.Builder
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
			body.WriteByte(o.kind)
			body.WriteString(o.line)
			body.WriteByte('\n')
		}
		if na == 0 {
			la--
		}
		if nb == 0 {
			lb--
		}
		out = append(out, fmt.Sprintf("@@ -%d,%d +%d,%d @@\n", la, na, lb, nb)+body.String())
		i = end
	}
	return out
}
