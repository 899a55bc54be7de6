package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// liveLine shows a changing status line: redrawn in place on a terminal,
// and on a log or a pipe printed only when it changed and at most every
// few seconds, so that scripts get a readable transcript.
type liveLine struct {
	out      io.Writer
	tty      bool
	every    time.Duration
	last     time.Time
	lastText string
}

func newLiveLine(out io.Writer) *liveLine {
	f, ok := out.(*os.File)
	return &liveLine{out: out, tty: ok && term.IsTerminal(int(f.Fd())), every: 2 * time.Second}
}

// show replaces the line with text.
func (l *liveLine) show(text string) {
	if l.tty {
		fmt.Fprintf(l.out, "\r\033[K%s", text)
		return
	}
	if text == l.lastText || time.Since(l.last) < l.every {
		return
	}
	l.last, l.lastText = time.Now(), text
	fmt.Fprintln(l.out, text)
}

// done ends the live line with a final text.
func (l *liveLine) done(text string) {
	if l.tty {
		fmt.Fprintf(l.out, "\r\033[K%s\n", text)
		return
	}
	fmt.Fprintln(l.out, text)
}

// bar renders pct (0-100) as a fixed-width bar with the percentage.
func bar(pct float64, width int) string {
	pct = max(0, min(100, pct))
	full := int(pct / 100 * float64(width))
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + fmt.Sprintf("] %3.0f%%", pct)
}

// printJSONLine writes v as one line of JSON (the -o json form of a
// stream of progress events), its empty lists as [] (jsonLists).
func (g *globals) printJSONLine(v any) error {
	b, err := versionedJSON(v)
	if err != nil {
		return err
	}
	_, err = g.out.Write(append(b, '\n'))
	return err
}
