package serving

import (
	"regexp"
	"strings"
	"testing"

	// Every service's REST bindings, as a binary that serves them links them.
	_ "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// TestRESTBindingsAreUnambiguous guards the Allow header: it lists the
// methods of every compiled-in binding that matches the path, which are
// the path's methods on the server that answered only while no path
// template belongs to two services.
func TestRESTBindingsAreUnambiguous(t *testing.T) {
	variable := regexp.MustCompile(`\{[^}]*\}`)
	owner := map[string]string{}
	n := 0
	for _, b := range restBindings() {
		tmpl := variable.ReplaceAllString(b.template, "*")
		svc := b.rpc[:strings.LastIndex(b.rpc, ".")]
		if prev, ok := owner[tmpl]; ok && prev != svc {
			t.Errorf("path %s is bound by %s and %s: the Allow header of a 405 could name a method this server lacks", b.template, prev, svc)
		}
		owner[tmpl] = svc
		n++
	}
	if n < 14 {
		t.Errorf("found %d REST bindings, want every service's (13 RPCs and /healthz)", n)
	}
}
