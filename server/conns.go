package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Listen wraps lis so that the node holds at most Options.ConnectionsMax
// connections: one more is refused at once and clearly (on a plaintext
// listener, with an HTTP/2 GOAWAY saying why, which the client's error
// shows; under TLS, by closing it), instead of the process running out of
// file descriptors and refusing everyone. Idle and half-open connections
// are closed by the timeouts in ServerOptions, which frees their places.
// Pass tls true if the gRPC server wraps these connections in TLS.
func (s *Server) Listen(lis net.Listener, tls bool) net.Listener {
	l := &limitListener{Listener: lis, s: s, tls: tls, max: s.opts.ConnectionsMax,
		refusing: make(chan struct{}, s.opts.RefusingMax)}
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	return l
}

// connections counts the connections the Listen listeners hold.
func (s *Server) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.listeners {
		l.mu.Lock()
		n += l.open
		l.mu.Unlock()
	}
	return n
}

// refuseTimeout bounds how long writing a refusal may take.
const refuseTimeout = time.Second

type limitListener struct {
	net.Listener
	s        *Server
	tls      bool
	max      int
	refusing chan struct{}

	mu   sync.Mutex
	open int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		ok := l.open < l.max
		if ok {
			l.open++
		}
		l.mu.Unlock()
		if ok {
			l.s.metrics.conns.Inc()
			return &limitConn{Conn: c, l: l}, nil
		}
		l.s.refused(reasonConnections, "addr:"+hostOf(c.RemoteAddr()))
		l.refuse(c)
	}
}

// refuse answers a connection over the limit and closes it, off the
// accepting goroutine.
func (l *limitListener) refuse(c net.Conn) {
	if l.tls {
		_ = c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		_ = c.SetDeadline(time.Now().Add(refuseTimeout))
		// Read the client's preface first: closing with unread data would
		// reset the connection before the client reads the refusal.
		_, _ = io.ReadFull(c, make([]byte, len(http2.ClientPreface)))
		var buf bytes.Buffer
		f := http2.NewFramer(&buf, nil)
		_ = f.WriteSettings()
		_ = f.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, []byte(connectionsRefusal(l.max)))
		_, _ = c.Write(buf.Bytes())
		_ = c.Close()
	}()
}

func connectionsRefusal(max int) string {
	return fmt.Sprintf("bouncer: ConnectionsMax (%d) reached: the node refuses new connections", max)
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.s.metrics.conns.Dec()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

func hostOf(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
