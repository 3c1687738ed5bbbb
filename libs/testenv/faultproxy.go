package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy between a client and a dependency that a test
// can slow down or cut: the fault injection of the chaos tests, in process.
type FaultProxy struct {
	Addr   string // where clients connect
	target string
	l      net.Listener

	delay atomic.Int64 // added before each chunk from the dependency, ns
	down  atomic.Bool
	// Aborted counts connections the client closed while a response was
	// held back by the delay: work the client cancelled.
	Aborted atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewFaultProxy proxies to target until the test ends.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy listen: %v", err)
	}
	p := &FaultProxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		l.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

// SetDelay slows every response chunk by d.
func (p *FaultProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetDown refuses new connections and cuts open ones (true), or restores
// service (false).
func (p *FaultProxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.closeAll()
	}
}

func (p *FaultProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *FaultProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, true)
		p.track(up, true)
		var holding atomic.Bool // a response is being held back by the delay
		p.wg.Add(2)
		go func() { // client → dependency
			defer p.wg.Done()
			io.Copy(up, c)
			if holding.Load() {
				p.Aborted.Add(1) // the client hung up while waiting
			}
			up.Close()
			p.track(up, false)
		}()
		go func() { // dependency → client, delayed
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					if d := time.Duration(p.delay.Load()); d > 0 {
						holding.Store(true)
						time.Sleep(d)
					}
					_, werr := c.Write(buf[:n])
					holding.Store(false)
					if werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			p.track(c, false)
		}()
	}
}
