// Package modelrt runs ranking models with ONNX Runtime: the model format
// (model.onnx + metadata.json), the feature-row assembly it prescribes,
// sessions on the CPU or CUDA execution provider, and the registry that
// loads, warms, swaps and unloads model versions.
package modelrt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

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

// cudaProviderLibrary is the CUDA provider that GPU builds of ONNX Runtime
// ship next to libonnxruntime.so.1.
const cudaProviderLibrary = "libonnxruntime_providers_cuda.so"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ErrNoCUDA says the CUDA execution provider could not start.
var ErrNoCUDA = errors.New("CUDA execution provider unavailable")

// OpenSession loads model with input and output named as given, input rows
// of width floats. With Auto it tries CUDA and falls back to the CPU,
// saying why in FallbackReason; with CUDA a failure is an error.
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
			// ONNX Runtime loads its CUDA provider from its own folder;
			// without it, it would only log an error to stderr and fail.
			if lib := filepath.Join(libDir, cudaProviderLibrary); !fileExists(lib) {
				return nil, fmt.Errorf("%w: %s is missing (this ONNX Runtime build has no CUDA provider: set ORT_LIB to a GPU build's libonnxruntime.so.1)", ErrNoCUDA, lib)
			}
			cuda, err := ort.NewCUDAProviderOptions()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
			}
			defer cuda.Destroy()
			if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoCUDA, err)
			}
		}
		return ort.NewDynamicAdvancedSession(model, []string{input}, []string{output}, so)
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
