// Command loadtest loads the live stack over the real wire and prints what a
// user gets: Recommend over gRPC (ghz's runner), over REST through the edge
// and over gRPC-Web through the edge (vegeta's attacker), each beside a bare
// health check over the same transport in the same run, with QPS, p50, p99
// and errors by code. It checks the budgets of docs/architecture.md
// ("Budgets") and exits non-zero when one is missed.
//
// With -launch it starts the stack itself (the recsys launcher and its
// flags), waits until ranking serves a model, loads it and stops it with
// SIGTERM. Results are written to -out as JSON and as the printed table,
// so runs can be compared.
//
// It is its own module (deploy/loadtest/go.mod), outside the workspace:
// the load generators' dependencies stay out of the services' build list.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bojand/ghz/runner"
	"github.com/jhump/protoreflect/desc"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
)

type config struct {
	grpcAddr    string // ranking's gRPC address
	rankingHTTP string // ranking's HTTP address (gRPC-Web health floor)
	edge        string // the web edge's base URL
	clients     uint
	duration    time.Duration
	warmup      time.Duration
	users       int
	limit       int
	slack       float64
	out         string
	label       string
	only        string
	launch      []string
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("loadtest", flag.ExitOnError)
	fs.StringVar(&cfg.grpcAddr, "grpc", "localhost:50053", "ranking's gRPC address")
	fs.StringVar(&cfg.rankingHTTP, "ranking-http", "http://localhost:8093", "ranking's HTTP base URL (the gRPC-Web floor is its health service)")
	fs.StringVar(&cfg.edge, "edge", "http://localhost:8080", "the web edge's base URL (REST and gRPC-Web)")
	fs.UintVar(&cfg.clients, "clients", 8, "concurrent clients")
	fs.DurationVar(&cfg.duration, "duration", 15*time.Second, "how long each call is loaded")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured load before the first measured call")
	fs.IntVar(&cfg.users, "users", 1000, "requests cycle through user-0 … user-<users-1> (the demo world's users)")
	fs.IntVar(&cfg.limit, "limit", 10, "Recommend's limit")
	fs.Float64Var(&cfg.slack, "slack", 1, "budgets are relaxed by this factor (QPS divided, p99 multiplied): 1.5 for the embedded Redis and Kafka")
	fs.StringVar(&cfg.out, "out", ".cache/bench", "folder for the results (loadtest-<label>-<time>.{json,txt})")
	fs.StringVar(&cfg.label, "label", "run", "a name for this run in the result file names (e.g. embedded, redis)")
	fs.StringVar(&cfg.only, "only", "", "load only the calls whose transport or call contains this (e.g. Recommend, gRPC-Web); for profiling")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadtest [flags] [-- launcher and its flags]\n\n"+
			"Loads Recommend over gRPC, REST and gRPC-Web with a bare health check over each as the floor.\n"+
			"After --, the command that starts the stack (stopped with SIGTERM when done).\n\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	cfg.launch = fs.Args()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// result is one loaded call.
type result struct {
	Transport string         `json:"transport"`
	Call      string         `json:"call"`
	Requests  uint64         `json:"requests"`
	QPS       float64        `json:"qps"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	Codes     map[string]int `json:"codes"` // every answer by code, successes included
	OK        int            `json:"ok"`    // successful answers
	// Budget, when the call has one.
	MinQPS   float64 `json:"min_qps,omitempty"`
	MaxP99ms float64 `json:"max_p99_ms,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

func run(ctx context.Context, cfg config) error {
	exited := make(<-chan struct{})
	if len(cfg.launch) > 0 {
		stopStack, done, err := launch(cfg)
		if err != nil {
			return err
		}
		defer stopStack()
		exited = done
	}
	if err := waitServing(ctx, cfg, exited, 3*time.Minute); err != nil {
		return err
	}
	before, err := scrape(cfg)
	if err != nil {
		return err
	}
	if cfg.warmup > 0 {
		fmt.Fprintf(os.Stderr, "warming up for %s\n", cfg.warmup)
		if _, err := loadGRPC(cfg, "recsys.ranking.v1.RankingService/Recommend", cfg.warmup); err != nil {
			return err
		}
	}
	// The budgets of docs/architecture.md ("Budgets").
	s := cfg.slack
	calls := []struct {
		transport, call string
		load            func() (result, error)
		minQPS, maxP99  float64
	}{
		{"gRPC", "Health/Check", func() (result, error) { return loadGRPC(cfg, "grpc.health.v1.Health/Check", cfg.duration) }, 0, 0},
		{"gRPC", "Recommend", func() (result, error) {
			return loadGRPC(cfg, "recsys.ranking.v1.RankingService/Recommend", cfg.duration)
		}, 1000 / s, 20 * s},
		{"REST (edge)", "GET /livez", func() (result, error) { return loadHTTP(cfg, restFloor(cfg)) }, 0, 0},
		{"REST (edge)", "GET /v1/users/{id}/recommendations", func() (result, error) { return loadHTTP(cfg, restRecommend(cfg)) }, 600 / s, 30 * s},
		{"gRPC-Web", "Health/Check (ranking's HTTP port)", func() (result, error) { return loadHTTP(cfg, grpcWebHealth(cfg)) }, 0, 0},
		{"gRPC-Web (edge)", "Recommend", func() (result, error) { return loadHTTP(cfg, grpcWebRecommend(cfg)) }, 0, 0},
	}
	var results []result
	missed := 0
	for _, c := range calls {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cfg.only != "" && !strings.Contains(c.transport+" "+c.call, cfg.only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "loading %s %s with %d clients for %s\n", c.transport, c.call, cfg.clients, cfg.duration)
		r, err := c.load()
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.transport, c.call, err)
		}
		r.Transport, r.Call = c.transport, c.call
		if c.minQPS > 0 {
			met := r.QPS >= c.minQPS && r.P99ms <= c.maxP99 && r.OK == int(r.Requests)
			r.MinQPS, r.MaxP99ms, r.Met = c.minQPS, c.maxP99, &met
			if !met {
				missed++
			}
		}
		results = append(results, r)
	}
	after, err := scrape(cfg)
	if err != nil {
		return err
	}
	table := format(cfg, results) + served(before, after)
	fmt.Print(table)
	if err := save(cfg, results, table); err != nil {
		return err
	}
	if missed > 0 {
		return fmt.Errorf("%d budget(s) missed", missed)
	}
	return nil
}

// loadGRPC loads one unary call of ranking's gRPC server with ghz's runner
// (reflection supplies the schema, as for any gRPC client tool).
func loadGRPC(cfg config, call string, d time.Duration) (result, error) {
	opts := []runner.Option{
		runner.WithInsecure(true),
		runner.WithConcurrency(cfg.clients),
		runner.WithConnections(1), // one channel, as a real client holds
		runner.WithRunDuration(d),
		runner.WithTimeout(5 * time.Second),
		runner.WithDurationStopAction("ignore"), // calls in flight at the end are not counted
		runner.WithDataFromJSON("{}"),
	}
	if strings.HasSuffix(call, "/Recommend") {
		var n atomic.Uint64
		opts = append(opts, runner.WithBinaryDataFunc(func(*desc.MethodDescriptor, *runner.CallData) []byte {
			b, _ := proto.Marshal(recommendRequest(cfg, n.Add(1)))
			return b
		}))
	}
	rep, err := runner.Run(call, cfg.grpcAddr, opts...)
	if err != nil {
		return result{}, errors.New(cut(err.Error(), 300))
	}
	r := result{Requests: rep.Count, QPS: rep.Rps, Codes: map[string]int{}}
	for _, l := range rep.LatencyDistribution {
		switch l.Percentage {
		case 50:
			r.P50ms = ms(l.Latency)
		case 99:
			r.P99ms = ms(l.Latency)
		}
	}
	for code, k := range rep.StatusCodeDist {
		r.Codes[code] += k
	}
	r.OK = r.Codes[codes.OK.String()]
	return r, nil
}

func recommendRequest(cfg config, n uint64) *rankingv1.RecommendRequest {
	return &rankingv1.RecommendRequest{UserId: "user-" + strconv.FormatUint(n%uint64(cfg.users), 10), Limit: int32(cfg.limit)}
}

// httpCall is one HTTP load: a targeter and how to read an answer's code.
type httpCall struct {
	target vegeta.Targeter
	code   func(*vegeta.Result) string
	ok     string // the code of a successful answer
}

func restFloor(cfg config) httpCall {
	return httpCall{target: vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: cfg.edge + "/livez"}), code: httpCode, ok: "HTTP 200"}
}

func restRecommend(cfg config) httpCall {
	var n atomic.Uint64
	return httpCall{
		target: func(t *vegeta.Target) error {
			*t = vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/v1/users/user-%d/recommendations?limit=%d", cfg.edge, n.Add(1)%uint64(cfg.users), cfg.limit)}
			return nil
		},
		code: httpCode, ok: "HTTP 200",
	}
}

func grpcWebHealth(cfg config) httpCall {
	body := grpcWebFrame(&healthpb.HealthCheckRequest{})
	return httpCall{
		target: vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: cfg.rankingHTTP + "/grpc.health.v1.Health/Check", Body: body, Header: grpcWebHeader()}),
		code:   grpcWebCode, ok: "OK",
	}
}

func grpcWebRecommend(cfg config) httpCall {
	var n atomic.Uint64
	return httpCall{
		target: func(t *vegeta.Target) error {
			*t = vegeta.Target{Method: "POST", URL: cfg.edge + "/recsys.ranking.v1.RankingService/Recommend",
				Body: grpcWebFrame(recommendRequest(cfg, n.Add(1))), Header: grpcWebHeader()}
			return nil
		},
		code: grpcWebCode, ok: "OK",
	}
}

func grpcWebHeader() http.Header {
	return http.Header{"Content-Type": {"application/grpc-web+proto"}, "X-Grpc-Web": {"1"}}
}

// grpcWebFrame is a gRPC-Web request body: one uncompressed data frame.
func grpcWebFrame(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	frame := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	return append(frame, b...)
}

func httpCode(r *vegeta.Result) string {
	if r.Error != "" && r.Code == 0 {
		return "transport error"
	}
	return "HTTP " + strconv.Itoa(int(r.Code))
}

// grpcWebCode reads a gRPC-Web answer's grpc-status: from the headers of a
// trailers-only answer, else from the trailer frame that ends the body.
func grpcWebCode(r *vegeta.Result) string {
	if r.Code != http.StatusOK {
		return httpCode(r)
	}
	if s := r.Headers.Get("Grpc-Status"); s != "" {
		return grpcCodeName(s)
	}
	for b := r.Body; len(b) >= 5; {
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			break
		}
		if b[0]&0x80 != 0 { // the trailer frame: HTTP/1-style header lines
			tr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(b[5 : 5+n]))).ReadMIMEHeader()
			if err != nil && !errors.Is(err, io.EOF) {
				break
			}
			return grpcCodeName(tr.Get("Grpc-Status"))
		}
		b = b[5+n:]
	}
	return "no grpc-status"
}

// loadHTTP runs one HTTP call with vegeta's attacker: cfg.clients workers,
// each sending its next request as soon as its last one is answered.
func loadHTTP(cfg config, c httpCall) (result, error) {
	a := vegeta.NewAttacker(vegeta.Workers(uint64(cfg.clients)), vegeta.MaxWorkers(uint64(cfg.clients)),
		vegeta.Connections(int(cfg.clients)), vegeta.KeepAlive(true), vegeta.Timeout(5*time.Second))
	var m vegeta.Metrics
	codes := map[string]int{}
	for res := range a.Attack(c.target, vegeta.Rate{Freq: 0}, cfg.duration, "") {
		m.Add(res)
		codes[c.code(res)]++
	}
	m.Close()
	if m.Requests == 0 {
		return result{}, errors.New("no request was answered")
	}
	r := result{Requests: m.Requests, QPS: float64(m.Requests) / m.Duration.Seconds(), P50ms: ms(m.Latencies.P50), P99ms: ms(m.Latencies.P99), Codes: codes}
	r.OK = codes[c.ok]
	return r, nil
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// format is the table a person reads.
func format(cfg config, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nload test, %d clients, %s per call, %s\n", cfg.clients, cfg.duration, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "%-16s %-36s %9s %9s %9s  %-26s %s\n", "transport", "call", "QPS", "p50 ms", "p99 ms", "budget", "answers by code")
	for _, r := range rs {
		budget := ""
		if r.Met != nil {
			verdict := "met"
			if !*r.Met {
				verdict = "MISSED"
			}
			budget = fmt.Sprintf("≥%.0f QPS, p99 ≤%.0f: %s", r.MinQPS, r.MaxP99ms, verdict)
		}
		keys := make([]string, 0, len(r.Codes))
		for k := range r.Codes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var codes []string
		for _, k := range keys {
			codes = append(codes, fmt.Sprintf("%s %d", k, r.Codes[k]))
		}
		fmt.Fprintf(&b, "%-16s %-36s %9.0f %9.2f %9.2f  %-26s %s\n", r.Transport, r.Call, r.QPS, r.P50ms, r.P99ms, budget, strings.Join(codes, ", "))
	}
	return b.String()
}

func save(cfg config, rs []result, table string) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(cfg.out, fmt.Sprintf("loadtest-%s-%s", cfg.label, time.Now().UTC().Format("20060102T150405Z")))
	js, err := json.MarshalIndent(map[string]any{"label": cfg.label, "clients": cfg.clients, "duration": cfg.duration.String(), "results": rs}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "results in %s.{json,txt}\n", base)
	return os.WriteFile(base+".txt", []byte(table), 0o644)
}

// launch starts the stack in its own process group and returns the
// function that stops it (SIGTERM, then SIGKILL after 20 s) and a channel
// closed when it exits.
func launch(cfg config) (func(), <-chan struct{}, error) {
	cmd := exec.Command(cfg.launch[0], cfg.launch[1:]...)
	logPath := filepath.Join(cfg.out, "loadtest-"+cfg.label+"-stack.log")
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return nil, nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("start the stack: %w", err)
	}
	fmt.Fprintf(os.Stderr, "stack started (pid %d), its log in %s\n", cmd.Process.Pid, logPath)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logFile.Close()
	}, done, nil
}

// waitServing waits until Recommend answers with a model version (the
// stack trains its first model when it has none) over gRPC and the edge.
func waitServing(ctx context.Context, cfg config, exited <-chan struct{}, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	conn, err := grpc.NewClient(cfg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := rankingv1.NewRankingServiceClient(conn)
	fmt.Fprintf(os.Stderr, "waiting for ranking at %s to serve a model\n", cfg.grpcAddr)
	var last error
	for {
		cctx, c := context.WithTimeout(ctx, 2*time.Second)
		resp, err := client.Recommend(cctx, recommendRequest(cfg, 0))
		c()
		if err == nil && resp.GetModelVersion() != "" && len(resp.GetItems()) > 0 {
			hresp, herr := http.Get(cfg.edge + "/livez")
			if herr == nil {
				hresp.Body.Close()
				if hresp.StatusCode == http.StatusOK {
					return nil
				}
			}
			err = herr
		}
		if err == nil {
			err = errors.New("no model version yet")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the stack did not serve within %s: %v", within, last)
		case <-exited:
			return errors.New("the stack exited before it served; see its log")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func grpcCodeName(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil {
		return "grpc-status " + strconv.Quote(s)
	}
	return codes.Code(n).String()
}

// counters are ranking's own account of the answers, from its /metrics.
type counters struct {
	candidates, rankings float64            // recsys_rank_batch_size sum and count
	outcomes             map[string]float64 // recsys_rank_requests_total by outcome
}

// scrape reads ranking's /metrics.
func scrape(cfg config) (counters, error) {
	c := counters{outcomes: map[string]float64{}}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(cfg.rankingHTTP + "/metrics")
	if err != nil {
		return c, fmt.Errorf("read ranking's metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, _ := strings.Cut(line, " ")
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndex(rest, " ")+1:]), 64)
		if err != nil || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case name == "recsys_rank_batch_size_sum":
			c.candidates = v
		case name == "recsys_rank_batch_size_count":
			c.rankings = v
		case strings.HasPrefix(name, "recsys_rank_requests_total{"):
			if _, o, ok := strings.Cut(name, `outcome="`); ok {
				o, _, _ = strings.Cut(o, `"`)
				c.outcomes[o] += v
			}
		}
	}
	return c, sc.Err()
}

// served says what ranking did under the load: candidates ranked per
// answer (speed must not be bought by ranking fewer) and the answers it
// degraded.
func served(before, after counters) string {
	n := after.rankings - before.rankings
	if n <= 0 {
		return "ranking reported no answers in /metrics\n"
	}
	total := 0.0
	var parts []string
	for o, v := range after.outcomes {
		total += v - before.outcomes[o]
	}
	keys := make([]string, 0, len(after.outcomes))
	for o := range after.outcomes {
		keys = append(keys, o)
	}
	slices.Sort(keys)
	for _, o := range keys {
		if d := after.outcomes[o] - before.outcomes[o]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", o, 100*d/total))
		}
	}
	return fmt.Sprintf("ranking, by its /metrics: %.0f candidates ranked per answer; answers %s\n",
		(after.candidates-before.candidates)/n, strings.Join(parts, ", "))
}
