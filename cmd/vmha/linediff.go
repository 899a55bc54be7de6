package main

import (
	"fmt"
	"io"
	"strings"
)

// A small line diff for vmha rules diff: the longest common subsequence of
// the lines that differ (after the common head and tail are set aside),
// printed as a unified diff with three lines of context. A cluster.yaml
// change is a few lines in a file of at most a few MiB; when the differing
// middle is too large for the quadratic table, it is shown as removed and
// added whole, which is still a correct diff.

// diffOp is one line of a diff: ' ' kept, '-' only in a, '+' only in b.
type diffOp struct {
	kind byte
	line string
}

// maxDiffCells bounds the LCS table (4 bytes a cell).
const maxDiffCells = 16 << 20

// splitLines splits s after each newline; a last line without one keeps
// none (the diff says so).
func splitLines(s string) []string {
	ls := strings.SplitAfter(s, "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// lineDiff is the edit script from a to b.
func lineDiff(a, b []string) []diffOp {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	var ops []diffOp
	for _, l := range a[:p] {
		ops = append(ops, diffOp{' ', l})
	}
	am, bm := a[p:len(a)-s], b[p:len(b)-s]
	if (len(am)+1)*(len(bm)+1) > maxDiffCells {
		for _, l := range am {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range bm {
			ops = append(ops, diffOp{'+', l})
		}
	} else {
		ops = append(ops, lcsDiff(am, bm)...)
	}
	for _, l := range a[len(a)-s:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

func lcsDiff(a, b []string) []diffOp {
	w := len(b) + 1
	// t[i*w+j] is the LCS length of a[i:] and b[j:].
	t := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			switch {
			case a[i] == b[j]:
				t[i*w+j] = t[(i+1)*w+j+1] + 1
			case t[(i+1)*w+j] >= t[i*w+j+1]:
				t[i*w+j] = t[(i+1)*w+j]
			default:
				t[i*w+j] = t[i*w+j+1]
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i, j = i+1, j+1
		case t[(i+1)*w+j] >= t[i*w+j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}

// writeUnified prints the diff of a and b as a unified diff with ctx
// lines of context; it reports whether they differ.
func writeUnified(w io.Writer, aName, bName, a, b string, ctx int) bool {
	ops := lineDiff(splitLines(a), splitLines(b))
	var changed []int
	for i, op := range ops {
		if op.kind != ' ' {
			changed = append(changed, i)
		}
	}
	if len(changed) == 0 {
		return false
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", aName, bName)
	// aAt[i], bAt[i]: the lines of a and b before ops[i].
	aAt, bAt := make([]int, len(ops)+1), make([]int, len(ops)+1)
	for i, op := range ops {
		aAt[i+1], bAt[i+1] = aAt[i], bAt[i]
		if op.kind != '+' {
			aAt[i+1]++
		}
		if op.kind != '-' {
			bAt[i+1]++
		}
	}
	for k := 0; k < len(changed); {
		start := max(changed[k]-ctx, 0)
		end := changed[k] + 1
		for k < len(changed) && changed[k]-end <= 2*ctx {
			end = changed[k] + 1
			k++
		}
		end = min(end+ctx, len(ops))
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(aAt[start], aAt[end]-aAt[start]), hunkRange(bAt[start], bAt[end]-bAt[start]))
		for _, op := range ops[start:end] {
			line := op.line
			if !strings.HasSuffix(line, "\n") {
				line += "\n\\ No newline at end of file\n"
			}
			fmt.Fprintf(w, "%c%s", op.kind, line)
		}
	}
	return true
}

// hunkRange is a hunk's "line,count" (the line before an empty range).
func hunkRange(from, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", from)
	}
	if n == 1 {
		return fmt.Sprintf("%d", from+1)
	}
	return fmt.Sprintf("%d,%d", from+1, n)
}
