package local

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/testenv"
)

// TestBrowser runs the platform with its demo world and drives the web UI
// in headless Chromium (services/web/ui/e2e/browser.mjs). The screenshot
// lands in .cache/artifacts/ui.png at the repository root.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the platform and a browser")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "services/web/ui/e2e/browser.mjs")
	if _, err := os.Stat(filepath.Join(root, "node_modules/playwright-core")); err != nil {
		t.Skip("playwright-core is not installed (npm ci)")
	}
	if _, err := os.Stat(filepath.Join(root, "services/web/ui/dist/app.js")); err != nil {
		t.Skip("the UI bundle is not built (make ui)")
	}
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}

	ports := testenv.FreePorts(t, 12)
	var cfg Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	args := []string{"-redis=embedded", "-kafka=embedded", "-simulate-rate=20", "-ranking.model-root=" + t.TempDir(), "-ranking.ready-interval=100ms"}
	addr := map[string]string{}
	for i, s := range cfg.services() {
		addr[s.name] = fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		args = append(args, fmt.Sprintf("-%s.grpc-addr=127.0.0.1:%d", s.name, ports[2*i]), "-"+s.name+".http-addr="+addr[s.name])
	}
	for _, up := range []string{"userfeatures", "itemfeatures", "ranking", "feedback"} {
		args = append(args, fmt.Sprintf("-web.%s-grpc=127.0.0.1:%d", up, ports[2*indexOf(cfg, up)]), "-web."+up+"-http="+addr[up])
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testenv.DiscardLogger()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.WaitForPort(t, addr["web"], 60*time.Second)
	// The first model trains at start; wait until ranking is ready.
	for end := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr["ranking"] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(end) {
			t.Fatal("ranking did not become ready within 2 minutes")
		}
	}

	shot := filepath.Join(root, ".cache/artifacts/ui.png")
	os.MkdirAll(filepath.Dir(shot), 0o755)
	bctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	cmd := exec.CommandContext(bctx, "node", script, "http://"+addr["web"], shot)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser check failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("browser check did not report ok:\n%s", out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (size %d); want a real page", shot, err, sizeOf(st))
	}
	t.Logf("%s; screenshot in %s", strings.TrimSpace(string(out)), shot)
}

func indexOf(cfg Config, name string) int {
	for i, s := range cfg.services() {
		if s.name == name {
			return i
		}
	}
	return -1
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}
