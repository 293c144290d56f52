package linkproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo answers every line with the same line, on 127.0.0.1.
func echo(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return lis.Addr().String()
}

func echoes(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func dialEchoes(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	return echoes(c)
}

// A cut closes the connection the proxy carries and every new one; a heal
// lets new ones through again.
func TestCutAndHeal(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if !echoes(open) || !dialEchoes(p.Addr()) {
		t.Fatal("the proxy does not carry traffic")
	}
	p.SetCut(true)
	if !p.Cut() {
		t.Fatal("not cut after SetCut(true)")
	}
	if echoes(open) {
		t.Fatal("a connection carried across the cut")
	}
	if dialEchoes(p.Addr()) {
		t.Fatal("a new connection carried across the cut")
	}
	p.SetCut(false)
	if p.Cut() || !dialEchoes(p.Addr()) {
		t.Fatal("no traffic after the heal")
	}
}
