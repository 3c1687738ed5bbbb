// Package modelrt runs ranking models with ONNX Runtime: the model format
// (model.onnx + metadata.json), the feature-row assembly it prescribes,
// sessions on the CPU or CUDA execution provider, and the registry that
// loads, warms, swaps and unloads model versions.
package modelrt

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// recsys_try_dlopen loads a library by name as the dynamic loader would
// for a DT_NEEDED entry, and returns dlerror() if it cannot.
static const char *recsys_try_dlopen(const char *name) {
	if (dlopen(name, RTLD_LAZY | RTLD_LOCAL) == NULL) {
		return dlerror();
	}
	return NULL;
}
*/
import "C"

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// DefaultLibrary is where make ort puts the ONNX Runtime shared library,
// relative to the repository root.
const DefaultLibrary = ".cache/onnxruntime/libonnxruntime.so.1"

// LibraryPath is ORT_LIB when set, else DefaultLibrary found from the
// working directory or any parent (tests run in package folders).
func LibraryPath() string {
	if p := os.Getenv("ORT_LIB"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return DefaultLibrary
	}
	for {
		if p := filepath.Join(dir, DefaultLibrary); fileExists(p) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return DefaultLibrary
		}
		dir = parent
	}
}

var (
	initOnce sync.Once
	initErr  error
	libDir   string // the folder of the library Init loaded
)

// Init loads the ONNX Runtime library at path and creates the process-wide
// environment. Only the first call's path counts; later calls return its
// outcome.
func Init(path string) error {
	initOnce.Do(func() {
		libDir = filepath.Dir(path)
		if _, err := os.Stat(path); err != nil {
			initErr = fmt.Errorf("ONNX Runtime library %s: %w (run `make ort`, or set ORT_LIB to a libonnxruntime.so)", path, err)
			return
		}
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			initErr = fmt.Errorf("start ONNX Runtime from %s: %w", path, err)
		}
	})
	return initErr
}

// Provider is an execution provider choice.
type Provider string

// Providers.
const (
	CPU  Provider = "cpu"
	CUDA Provider = "cuda"
	Auto Provider = "auto" // CUDA when its libraries and a device are there, else CPU
)

// ParseProvider checks a -execution-provider value.
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(s); p {
	case CPU, CUDA, Auto:
		return p, nil
	}
	return "", fmt.Errorf("execution provider %q: want cpu, cuda or auto", s)
}

// SessionOptions configure a session.
type SessionOptions struct {
	Provider Provider
	// IntraOpThreads is ONNX Runtime's intra-op thread count (1 keeps a
	// request on one core, which serves concurrent requests best).
	IntraOpThreads int
}

// Session runs one model. Run may be called concurrently. Close it once no
// Run is in flight.
type Session struct {
	s        *ort.DynamicAdvancedSession
	width    int
	provider Provider
	// Note why CUDA was not used, when Auto fell back to CPU.
	FallbackReason string
}

// The CUDA execution provider is two libraries that ONNX Runtime loads
// from its own folder (the npm build ships neither; `make ort-gpu` puts
// them beside a copy of the core in .cache/onnxruntime-gpu). The provider
// links the CUDA libraries and the driver's libcuda.so.1, found through
// the library path.
const (
	cudaProviderLibrary   = "libonnxruntime_providers_cuda.so"
	sharedProviderLibrary = "libonnxruntime_providers_shared.so"
	cudaDriverLibrary     = "libcuda.so.1"
)

// DefaultGPULibrary is where make ort-gpu puts the core beside the CUDA
// provider and the CUDA libraries, relative to the repository root. Point
// ORT_LIB at it and put its folder on LD_LIBRARY_PATH.
const DefaultGPULibrary = ".cache/onnxruntime-gpu/libonnxruntime.so.1"

// disableCPUFallback is ONNX Runtime's session config key that makes
// session creation fail when any node would be assigned to the CPU
// provider, instead of running it there silently.
const disableCPUFallback = "session.disable_cpu_ep_fallback"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ErrNoCUDA says the CUDA execution provider could not start: its
// libraries, the driver or a device are missing.
var ErrNoCUDA = errors.New("CUDA execution provider unavailable")

// cudaReady checks, before ONNX Runtime is asked (it would print an error
// to stderr and answer only "Failed to load shared library"), that the
// provider libraries are in dir and that every library the CUDA provider
// links can be loaded: the driver's libcuda.so.1 and the CUDA runtime
// libraries (their names come from the provider file itself, so a provider
// built for another CUDA major names its own). The error says which of
// provider, driver or CUDA libraries is missing and how to get them. A
// missing device is found only by ONNX Runtime, when the session starts.
func cudaReady(dir string) error {
	for _, f := range []string{cudaProviderLibrary, sharedProviderLibrary} {
		if p := filepath.Join(dir, f); !fileExists(p) {
			return fmt.Errorf("%w: provider library %s is missing: this ONNX Runtime has no CUDA provider; run `make ort-gpu` and set ORT_LIB=%s and LD_LIBRARY_PATH to its folder", ErrNoCUDA, p, DefaultGPULibrary)
		}
	}
	provider := filepath.Join(dir, cudaProviderLibrary)
	needed, err := neededLibraries(provider)
	if err != nil {
		return fmt.Errorf("%w: read %s: %v", ErrNoCUDA, provider, err)
	}
	var problems, missing []string
	for _, lib := range needed {
		if baseLibraries[lib] {
			continue
		}
		if msg := canLoad(lib); msg != "" {
			if lib == cudaDriverLibrary {
				problems = append(problems, fmt.Sprintf("NVIDIA driver: %s cannot be loaded (%s); install the NVIDIA driver (the provider's CUDA %s needs driver %s or newer)", lib, msg, cudaMajor(needed), minDriver(needed)))
			} else {
				missing = append(missing, lib)
			}
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("CUDA libraries: %s not found on the library path (LD_LIBRARY_PATH=%q); run `make ort-gpu` and put %s on LD_LIBRARY_PATH", strings.Join(missing, ", "), os.Getenv("LD_LIBRARY_PATH"), filepath.Dir(DefaultGPULibrary)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrNoCUDA, strings.Join(problems, "; "))
	}
	return nil
}

// baseLibraries are the C and C++ runtime libraries every Linux has.
var baseLibraries = map[string]bool{
	"libc.so.6": true, "libm.so.6": true, "libdl.so.2": true, "librt.so.1": true,
	"libpthread.so.0": true, "libstdc++.so.6": true, "libgcc_s.so.1": true,
	"ld-linux-x86-64.so.2": true, "ld-linux-aarch64.so.1": true,
}

// neededLibraries lists the DT_NEEDED entries of an ELF shared library.
func neededLibraries(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// cudaMajor is the CUDA major version the provider was built for, read
// from the libcudart.so.N it links ("?" if it links none).
func cudaMajor(needed []string) string {
	for _, lib := range needed {
		if v, ok := strings.CutPrefix(lib, "libcudart.so."); ok {
			return v
		}
	}
	return "?"
}

// minDriver is the oldest Linux driver branch for the CUDA major (NVIDIA's
// CUDA release notes, "minor version compatibility").
func minDriver(needed []string) string {
	switch cudaMajor(needed) {
	case "12":
		return "525"
	case "13":
		return "580"
	}
	return "a matching"
}

// canLoad asks the dynamic loader for lib by name, as ONNX Runtime's
// loading of the provider will, and returns its error ("" when it loads).
// A library that loads stays loaded: ONNX Runtime loads the same ones
// right after, and closing them would map 0.5 GB of cuBLASLt twice.
func canLoad(lib string) string {
	name := C.CString(lib)
	defer C.free(unsafe.Pointer(name))
	if msg := C.recsys_try_dlopen(name); msg != nil {
		return C.GoString(msg)
	}
	return ""
}

// cudaFailure matches the errors ONNX Runtime's CUDA provider raises
// when a CUDA call fails (no device, a driver older than the runtime).
var cudaFailure = regexp.MustCompile(`CUDA failure \d+: [^;]*`)

// OpenSession loads model with input and output named as given, input rows
// of width floats. With Auto it tries CUDA and falls back to the CPU,
// saying why in FallbackReason; with CUDA a failure is an error (wrapping
// ErrNoCUDA when the provider, driver, CUDA libraries or device are
// missing). A CUDA session is created with CPU fallback disabled: every
// node of the model runs on the GPU, or the session fails.
func OpenSession(model, input, output string, width int, opts SessionOptions) (*Session, error) {
	try := func(p Provider) (*ort.DynamicAdvancedSession, error) {
		so, err := ort.NewSessionOptions()
		if err != nil {
			return nil, err
		}
		defer so.Destroy()
		if opts.IntraOpThreads > 0 {
			if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
				return nil, err
			}
		}
		if p == CUDA {
			if err := cudaReady(libDir); err != nil {
				return nil, err
			}
			cuda, err := ort.NewCUDAProviderOptions()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
			}
			defer cuda.Destroy()
			// Full float32 GEMMs: with TF32 (ONNX Runtime's default on
			// Ampere and newer) a score differs from the CPU's in the
			// third decimal, and ranking models are too small for TF32
			// to pay.
			if err := cuda.Update(map[string]string{"use_tf32": "0"}); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
			}
			if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
			}
			if err := so.AddSessionConfigEntry(disableCPUFallback, "1"); err != nil {
				return nil, fmt.Errorf("set %s: %w", disableCPUFallback, err)
			}
		}
		s, err := ort.NewDynamicAdvancedSession(model, []string{input}, []string{output}, so)
		if err != nil && p == CUDA {
			if m := cudaFailure.FindString(err.Error()); m != "" {
				// ONNX Runtime's message is a page of C++ templates;
				// the CUDA error is what a reader needs.
				return nil, fmt.Errorf("%w: no usable GPU: %s", ErrNoCUDA, strings.TrimSpace(m))
			}
			if strings.Contains(err.Error(), "fallback to CPU EP has been explicitly disabled") {
				return nil, fmt.Errorf("some nodes of the model have no CUDA kernel and CPU fallback is off (so that provider cuda means every node runs on the GPU): %w", err)
			}
		}
		return s, err
	}
	s := &Session{width: width, provider: opts.Provider}
	var err error
	switch opts.Provider {
	case CPU, CUDA:
		s.s, err = try(opts.Provider)
	case Auto:
		s.s, err = try(CUDA)
		s.provider = CUDA
		if err != nil {
			s.FallbackReason = err.Error()
			s.s, err = try(CPU)
			s.provider = CPU
		}
	default:
		return nil, fmt.Errorf("execution provider %q: want cpu, cuda or auto", opts.Provider)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s on %s: %w", model, s.provider, err)
	}
	return s, nil
}

// Provider is the execution provider the session runs on.
func (s *Session) Provider() Provider { return s.provider }

// Width is the number of floats per input row.
func (s *Session) Width() int { return s.width }

// Run scores rows (row-major, a multiple of Width floats) into out (grown
// as needed) and returns it, one score per row. The input is passed to ONNX
// Runtime without copying.
func (s *Session) Run(rows []float32, out []float32) ([]float32, error) {
	if len(rows) == 0 || len(rows)%s.width != 0 {
		return nil, fmt.Errorf("input of %d floats is not a whole number of %d-float rows", len(rows), s.width)
	}
	n := len(rows) / s.width
	in, err := ort.NewTensor(ort.NewShape(int64(n), int64(s.width)), rows)
	if err != nil {
		return nil, err
	}
	defer in.Destroy()
	outputs := []ort.Value{nil}
	if err := s.s.Run([]ort.Value{in}, outputs); err != nil {
		return nil, err
	}
	defer outputs[0].Destroy()
	t, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("model output is %T, want a float tensor", outputs[0])
	}
	data := t.GetData()
	if len(data) != n {
		return nil, fmt.Errorf("model returned %d scores for %d rows", len(data), n)
	}
	return append(out[:0], data...), nil
}

// Close frees the session.
func (s *Session) Close() error { return s.s.Destroy() }

// CheckIO checks the model's real inputs and outputs against the metadata:
// the input exists as a float tensor of [batch, width] (batch dynamic), the
// output exists as a float tensor.
func CheckIO(model string, m *Metadata) error {
	ins, outs, err := ort.GetInputOutputInfo(model)
	if err != nil {
		return fmt.Errorf("read %s: %w", model, err)
	}
	var errs []error
	found := false
	for _, in := range ins {
		if in.Name != m.Input {
			continue
		}
		found = true
		d := in.Dimensions
		if in.DataType != ort.TensorElementDataTypeFloat || len(d) != 2 || (d[1] != int64(len(m.Features)) && d[1] > 0) || d[0] > 0 {
			errs = append(errs, fmt.Errorf("input %s is %v %v, want float [batch (dynamic), %d]", in.Name, in.DataType, d, len(m.Features)))
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("model has no input %q (it has %v)", m.Input, names(ins)))
	}
	if len(ins) != 1 {
		errs = append(errs, fmt.Errorf("model has %d inputs %v, want exactly one", len(ins), names(ins)))
	}
	found = false
	for _, o := range outs {
		if o.Name == m.Output {
			found = true
			if o.DataType != ort.TensorElementDataTypeFloat {
				errs = append(errs, fmt.Errorf("output %s is %v, want float", o.Name, o.DataType))
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("model has no output %q (it has %v)", m.Output, names(outs)))
	}
	return errors.Join(errs...)
}

func names(infos []ort.InputOutputInfo) []string {
	out := make([]string, len(infos))
	for i, x := range infos {
		out[i] = x.Name
	}
	return out
}
