package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/internal/units"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// renderer holds one template set per page: each page defines "main",
// and the layout wraps it.
type renderer struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"mib": func(m uint64) string {
		if m >= 1024 {
			return strconv.FormatFloat(float64(m)/1024, 'f', 1, 64) + " GiB"
		}
		return strconv.FormatUint(m, 10) + " MiB"
	},
	// pct is a of b in whole percent, capped to 0..100 for bars.
	"pct": func(a, b uint64) int {
		if b == 0 {
			return 0
		}
		return int(math.Min(100, math.Round(float64(a)*100/float64(b))))
	},
	"ago": func(t, now time.Time) string {
		if t.IsZero() {
			return ""
		}
		return humanDuration(now.Sub(t)) + " ago"
	},
	"dur":   humanDuration,
	"clock": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b uint64) uint64 { return a - min(a, b) },
	"bytes": units.Bytes,
	// secs is an optional number of seconds ("" when unknown).
	"secs": func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 1, 64) + " s"
	},
}

// humanDuration is d rounded for people: 850ms, 4.2s, 3m10s, 2h5m, 3d4h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func newRenderer() (*renderer, error) {
	layout, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if page == "layout" || strings.HasPrefix(page, "_") {
			continue
		}
		t := template.New("layout").Funcs(funcs)
		if _, err := t.Parse(string(layout)); err != nil {
			return nil, fmt.Errorf("web: layout: %w", err)
		}
		// Shared pieces (_*.html) are defined for every page.
		parts, _ := fs.Glob(templateFS, "templates/_*.html")
		for _, p := range append(parts, n) {
			b, err := fs.ReadFile(templateFS, p)
			if err != nil {
				return nil, err
			}
			if _, err := t.Parse(string(b)); err != nil {
				return nil, fmt.Errorf("web: %s: %w", p, err)
			}
		}
		r.pages[page] = t
	}
	return r, nil
}

// page is what every page's template gets.
type page struct {
	Title string
	// Nav names the menu entry to mark.
	Nav  string
	Self string
	// Session is the logged-in identity (nil on the login page).
	User    *Identity
	CSRF    string
	Version uint64
	// Live: the page follows the cluster (the script swaps its main part).
	Live bool
	// CutOff is set when this host has no leader to ask: what it shows is
	// its own view, and actions are refused.
	CutOff string
	// FetchError is set when the status could not be read (the last one
	// read is shown).
	FetchError string
	Flash      string
	FlashError bool
	At         time.Time
	Data       any
}

// render writes the page (or only its main part for the live script).
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	t := s.pages.pages[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	tmpl := "layout"
	if r.Header.Get(headerPartial) == "1" {
		tmpl = "main"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		s.log.Error().Err(err).Str("page", name).Msg("web: render")
		http.Error(w, "the page could not be rendered: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Vmha-Version", strconv.FormatUint(p.Version, 10))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// headerPartial asks for a page's main part only (the live script).
const headerPartial = "X-Vmha-Partial"
