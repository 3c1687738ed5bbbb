package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildBinary builds the main package at pkg (a path or pattern go build
// takes, relative to the test's folder) into a temporary folder, once per
// test binary and package, and returns the executable's path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "recsys-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

var (
	builtMu sync.Mutex
	built   = map[string]string{}
)

// Child is a service binary started by a test.
type Child struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartChild runs bin with args; the test's end kills it if still running.
func StartChild(t testing.TB, bin string, args ...string) *Child {
	t.Helper()
	p := &Child{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Kill sends SIGKILL (no graceful anything) and waits for the exit.
func (p *Child) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// Terminate sends SIGTERM and returns the exit error, waiting at most
// timeout.
func (p *Child) Terminate(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(timeout)
}

func (p *Child) wait(timeout time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err // later waits see it too
		return err
	case <-time.After(timeout):
		return os.ErrDeadlineExceeded
	}
}

// Output is what the process wrote so far.
func (p *Child) Output() string { return p.out.String() }
