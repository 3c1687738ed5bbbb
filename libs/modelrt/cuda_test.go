package modelrt

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/modelrt/modeltest"
	ort "github.com/yalue/onnxruntime_go"
)

// The CUDA tests skip, saying why, where there is no GPU or no CUDA
// provider. RECSYS_REQUIRE_CUDA=1 (make gpu-check sets it) turns every
// such skip into a failure, so that a GPU machine cannot pass them by
// skipping.
const requireCUDAEnv = "RECSYS_REQUIRE_CUDA"

func noCUDA(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireCUDAEnv) == "1" {
		t.Fatalf(format+" (%s=1: this must not be skipped)", append(args, requireCUDAEnv)...)
	}
	t.Skipf(format, args...)
}

// warmBatches are the registry's default warm-up batch sizes and the
// largest candidate list the ranking service scores.
var warmBatches = []int{1, 10, 100, 500, 2000}

// scoreTolerance bounds |CUDA − CPU| and |ONNX Runtime − reference| per
// score: float32 sums in another order (TF32 is off, see OpenSession).
// A wrong row or weight moves a score by far more.
const scoreTolerance = 1e-4

func writeONNX(t testing.TB, onnx []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, onnx, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCUDA scores a model of the trainer's shape on CUDA and on the CPU
// and compares them, row by row, at every warm-up batch size; and checks
// that auto picks CUDA where CUDA works.
func TestCUDA(t *testing.T) {
	if err := Init(LibraryPath()); err != nil {
		noCUDA(t, "no ONNX Runtime: %v", err)
	}
	m := modeltest.NewMLP(1)
	path := writeONNX(t, m.ONNX())
	cuda, err := OpenSession(path, "features", "score", m.Width, SessionOptions{Provider: CUDA})
	if errors.Is(err, ErrNoCUDA) {
		noCUDA(t, "no CUDA here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cuda.Close()
	cpu, err := OpenSession(path, "features", "score", m.Width, SessionOptions{Provider: CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	compareProviders(t, m, cuda, cpu)

	auto, err := OpenSession(path, "features", "score", m.Width, SessionOptions{Provider: Auto})
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	if auto.Provider() != CUDA {
		t.Errorf("auto chose %s (%s) where a CUDA session opens, want cuda", auto.Provider(), auto.FallbackReason)
	}
}

// compareProviders runs every warm-up batch size on both sessions (the
// first Run of a size on CUDA also warms it) and checks each score
// against the other provider and the reference forward pass.
func compareProviders(t *testing.T, m modeltest.MLP, cuda, cpu *Session) {
	t.Helper()
	worst := 0.0
	for _, n := range warmBatches {
		rows := m.RandomRows(n, uint64(n))
		start := time.Now()
		got, err := cuda.Run(rows, nil)
		if err != nil {
			t.Fatalf("CUDA Run(%d rows): %v", n, err)
		}
		first := time.Since(start)
		want, err := cpu.Run(rows, nil)
		if err != nil {
			t.Fatalf("CPU Run(%d rows): %v", n, err)
		}
		bad := 0
		for i := range n {
			ref := m.Score(rows[i*m.Width : (i+1)*m.Width])
			d := math.Abs(float64(got[i]) - float64(want[i]))
			worst = max(worst, d)
			if d > scoreTolerance || math.Abs(float64(want[i])-ref) > scoreTolerance {
				if bad++; bad <= 3 {
					t.Errorf("batch %d row %d: CUDA %v, CPU %v, reference %v", n, i, got[i], want[i], ref)
				}
			}
		}
		t.Logf("batch %4d: first CUDA Run %v, %d/%d scores within %g of the CPU's", n, first.Round(time.Microsecond), n-bad, n, scoreTolerance)
	}
	t.Logf("largest |CUDA − CPU| over every batch: %.2g", worst)
}

// gpuLibrary is the core in a folder with the CUDA provider: ORT_LIB when
// its folder has one, else DefaultGPULibrary found from the working
// directory or a parent; "" when there is none.
func gpuLibrary() string {
	if p := os.Getenv("ORT_LIB"); p != "" && fileExists(filepath.Join(filepath.Dir(p), cudaProviderLibrary)) {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if p := filepath.Join(dir, DefaultGPULibrary); fileExists(p) && fileExists(filepath.Join(dir, filepath.Dir(DefaultGPULibrary), cudaProviderLibrary)) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

const probeEnv = "RECSYS_CUDA_PROBE"

// TestCUDAProviderBelongsToCore checks that the CUDA provider make ort-gpu
// fetched (from the onnxruntime-gpu wheel) works with the core beside it
// (the npm build make ort fetched): the two talk through a C++ interface
// with no version check of its own, so a mismatch shows only when the
// provider is used. In a child process (ONNX Runtime is started once per
// process, and the library path is read at process start) the core loads
// the provider and opens a CUDA session: on a GPU it must score like the
// reference; without one it must get as far as the provider's own first
// CUDA call. Where the machine has no NVIDIA driver, a stand-in
// libcuda.so.1 whose every call fails takes its place, built here with
// the C compiler cgo uses.
func TestCUDAProviderBelongsToCore(t *testing.T) {
	if os.Getenv(probeEnv) == "1" {
		probeCUDA(t)
		return
	}
	core := gpuLibrary()
	if core == "" {
		noCUDA(t, "no ONNX Runtime folder with %s (ORT_LIB or %s): run make ort-gpu", cudaProviderLibrary, DefaultGPULibrary)
	}
	dir := filepath.Dir(core)
	exports := map[string][]string{
		cudaProviderLibrary:   {"GetProvider"},
		sharedProviderLibrary: {"Provider_GetHost", "Provider_SetHost"},
		filepath.Base(core):   {"OrtGetApiBase"},
	}
	for file, want := range exports {
		have, err := exportedSymbols(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, sym := range want {
			if !have[sym] {
				t.Errorf("%s does not export %s", file, sym)
			}
		}
	}

	libPath := []string{dir}
	if msg := canLoad(cudaDriverLibrary); msg != "" {
		stub := buildDriverStub(t, filepath.Join(dir, cudaProviderLibrary))
		t.Logf("no NVIDIA driver here (%s): the provider loads against a stand-in %s", msg, stub)
		libPath = append([]string{filepath.Dir(stub)}, libPath...)
	}
	if p := os.Getenv("LD_LIBRARY_PATH"); p != "" {
		libPath = append(libPath, p)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCUDAProviderBelongsToCore$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), probeEnv+"=1", "ORT_LIB="+core, "LD_LIBRARY_PATH="+strings.Join(libPath, ":"))
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "probe: ") {
			t.Log(strings.TrimSpace(line[strings.Index(line, "probe: "):]))
		}
	}
	if err != nil {
		// A crash (a signal) is what a core and provider that do not
		// belong together typically do.
		t.Fatalf("CUDA probe with %s: %v\n%s", core, err, out)
	}
}

// probeCUDA is the child's side of TestCUDAProviderBelongsToCore.
func probeCUDA(t *testing.T) {
	if err := Init(os.Getenv("ORT_LIB")); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: core %s, ONNX Runtime %s", os.Getenv("ORT_LIB"), ort.GetVersion())
	m := modeltest.NewMLP(2)
	path := writeONNX(t, m.ONNX())
	s, err := OpenSession(path, "features", "score", m.Width, SessionOptions{Provider: CUDA})
	if err != nil {
		// The provider's own CUDA error (e.g. "CUDA failure 100: no
		// CUDA-capable device", or 35 from the stand-in driver) means
		// the core loaded it, handed it the host interface and had it
		// build its execution provider: they belong together.
		if errors.Is(err, ErrNoCUDA) && strings.Contains(err.Error(), "no usable GPU: CUDA failure") {
			t.Logf("probe: the provider loaded and stopped at its first CUDA call, as without a GPU it must: %s", err.Error()[strings.Index(err.Error(), "CUDA failure"):])
			return
		}
		t.Fatalf("probe: %v", err)
	}
	defer s.Close()
	rows := m.RandomRows(64, 3)
	got, err := s.Run(rows, nil)
	if err != nil {
		t.Fatalf("probe: CUDA Run: %v", err)
	}
	for i := range 64 {
		if ref := m.Score(rows[i*m.Width : (i+1)*m.Width]); math.Abs(float64(got[i])-ref) > scoreTolerance {
			t.Fatalf("probe: row %d scored %v on CUDA, reference %v", i, got[i], ref)
		}
	}
	t.Logf("probe: a CUDA session with CPU fallback off scored 64 rows like the reference")
}

func exportedSymbols(path string) (map[string]bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]bool{}
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF {
			out[s.Name] = true
		}
	}
	return out, nil
}

// buildDriverStub writes a libcuda.so.1 that defines every driver
// function the provider links (read from its undefined symbols, cu*
// names) as one that fails with CUDA_ERROR_STUB_LIBRARY, so that the
// provider loads on a machine without the driver. The CUDA runtime finds
// no cuGetProcAddress in it and reports the driver as insufficient.
func buildDriverStub(t *testing.T, provider string) string {
	t.Helper()
	f, err := elf.Open(provider)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var src bytes.Buffer
	src.WriteString("/* a stand-in for the NVIDIA driver, for TestCUDAProviderBelongsToCore */\n")
	var names []string
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && len(s.Name) > 2 && strings.HasPrefix(s.Name, "cu") && s.Name[2] >= 'A' && s.Name[2] <= 'Z' {
			names = append(names, s.Name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&src, "int %s(void) { return 34; }\n", n)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stub.c"), src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := "cc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(string(out))[0]
	}
	lib := filepath.Join(dir, cudaDriverLibrary)
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-Wl,-soname,"+cudaDriverLibrary, "-o", lib, filepath.Join(dir, "stub.c")).CombinedOutput(); err != nil {
		noCUDA(t, "no NVIDIA driver, and no C compiler (%s) to build a stand-in: %v\n%s", cc, err, out)
	}
	return lib
}

// crossoverBatches are the batch sizes BenchmarkCUDACrossover scores.
var crossoverBatches = []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}

// BenchmarkCUDACrossover scores batches of 1…2000 rows of a model of the
// trainer's shape on the CPU (one intra-op thread, as the ranking service
// runs) and on CUDA (input copied to the GPU and scores back on every
// Run, as in serving), then prints the table and the batch size from
// which CUDA is faster at every larger size measured (the table is the
// benchmark's log, which go test prints with -v):
//
//	go test -v -run '^$' -bench CUDACrossover -benchtime 200x ./libs/modelrt/
func BenchmarkCUDACrossover(b *testing.B) {
	if err := Init(LibraryPath()); err != nil {
		noCUDA(b, "no ONNX Runtime: %v", err)
	}
	m := modeltest.NewMLP(1)
	path := writeONNX(b, m.ONNX())
	sessions := map[Provider]*Session{}
	for _, p := range []Provider{CPU, CUDA} {
		s, err := OpenSession(path, "features", "score", m.Width, SessionOptions{Provider: p, IntraOpThreads: 1})
		if errors.Is(err, ErrNoCUDA) {
			noCUDA(b, "no CUDA here: %v", err)
		}
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		sessions[p] = s
	}
	perRun := map[Provider]map[int]time.Duration{CPU: {}, CUDA: {}}
	for _, n := range crossoverBatches {
		rows := m.RandomRows(n, uint64(n))
		for _, p := range []Provider{CPU, CUDA} {
			s := sessions[p]
			b.Run(fmt.Sprintf("%s/rows=%d", p, n), func(b *testing.B) {
				out, err := s.Run(rows, nil) // warm this batch size
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if out, err = s.Run(rows, out); err != nil {
						b.Fatal(err)
					}
				}
				perRun[p][n] = b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
	b.Log(crossoverTable(perRun))
}

// crossoverTable formats the per-Run times and says where CUDA starts to
// win: the smallest batch from which it is faster at every size measured.
func crossoverTable(perRun map[Provider]map[int]time.Duration) string {
	var sb strings.Builder
	sb.WriteString("\n| rows | CPU µs/Run | CUDA µs/Run | CUDA/CPU |\n| ---: | ---: | ---: | ---: |\n")
	cross := 0
	for _, n := range crossoverBatches {
		cpu, cuda := perRun[CPU][n], perRun[CUDA][n]
		if cpu == 0 || cuda == 0 {
			continue
		}
		fmt.Fprintf(&sb, "| %d | %.1f | %.1f | %.2f |\n", n, us(cpu), us(cuda), float64(cuda)/float64(cpu))
		switch {
		case cuda >= cpu:
			cross = 0
		case cross == 0:
			cross = n
		}
	}
	if cross == 0 {
		fmt.Fprintf(&sb, "CUDA does not win up to %d rows\n", crossoverBatches[len(crossoverBatches)-1])
	} else {
		fmt.Fprintf(&sb, "CUDA starts to win at %d rows\n", cross)
	}
	return sb.String()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
