package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

// TestSecurityHeaders: every answer of the edge, the UI's files and an
// API path alike, carries the CSP and the other hardening headers.
func TestSecurityHeaders(t *testing.T) {
	edge, closeEdge, err := newEdge(Config{Upstreams: map[string]*Upstream{}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEdge()
	for _, path := range []string{"/", "/index.html", "/boot.js", "/style.css", "/v1/nowhere"} {
		rec := httptest.NewRecorder()
		edge.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		for name, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "strict-origin",
		} {
			if got := rec.Header().Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, name, got, want)
			}
		}
	}
}

// TestNoInlineCode: the UI's pages hold no inline script, event handler
// attribute or style attribute, which the CSP would refuse.
func TestNoInlineCode(t *testing.T) {
	static, err := fs.Sub(ui, "ui")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := fs.Glob(static, "*.html")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no UI pages found: %v", err)
	}
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	src, code := regexp.MustCompile(`(?i)\ssrc\s*=`), regexp.MustCompile(`\S`)
	attrs := regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|javascript:`)
	for _, p := range pages {
		b, err := fs.ReadFile(static, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range scripts.FindAllSubmatch(b, -1) {
			if !src.Match(m[1]) || code.Match(m[2]) {
				t.Errorf("%s: inline script %q; move it to a file (the CSP forbids it)", p, m[0])
			}
		}
		if m := attrs.Find(b); m != nil {
			t.Errorf("%s: inline handler or style %q; use a file or a class (the CSP forbids it)", p, m)
		}
	}
}
