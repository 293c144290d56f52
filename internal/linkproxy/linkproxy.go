// Package linkproxy is a TCP proxy on loopback that can cut the link it
// carries, as a network partition would: tests and benchmarks route one
// member's connections to another through it (a member reaches each peer
// at the address its configuration names, which can be a proxy's).
package linkproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards every connection made to its address to a target until
// cut: then it closes every connection it carries and closes new ones at
// once, until healed.
type Proxy struct {
	lis    net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// dialTimeout bounds the connection to the target.
const dialTimeout = 2 * time.Second

// New listens on 127.0.0.1 (a port of the kernel's choosing) and forwards
// to target (host:port).
func New(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{lis: lis, target: target, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Target is where the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetCut cuts the link (closing what it carries) or heals it.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// Cut reports whether the link is cut.
func (p *Proxy) Cut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	_ = p.lis.Close()
	p.SetCut(true)
}

// track notes connections to close on a cut, or reports the link cut.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) serve(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, up) {
		_, _ = c.Close(), up.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_, _ = dst.Close(), src.Close()
	}
	go pipe(up, c)
	pipe(c, up)
}
