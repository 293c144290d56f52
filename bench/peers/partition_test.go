package peers

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// Cutting member 0 off cuts its links both ways and no other; a heal
// heals them all (the proxies' own test shows that a cut link carries
// nothing).
func TestPairLinksCut(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	links, err := newPairLinks(addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer links.close()
	check := func(m int) {
		t.Helper()
		for i := range links {
			for j, p := range links[i] {
				if i == j {
					if p != nil {
						t.Fatalf("a link from member %d to itself", i)
					}
					continue
				}
				if p.Target() != addrs[j] {
					t.Fatalf("link %d->%d goes to %s, not %s", i, j, p.Target(), addrs[j])
				}
				if want := m >= 0 && (i == m || j == m); p.Cut() != want {
					t.Fatalf("member %d cut off: link %d->%d cut %v", m, i, j, p.Cut())
				}
			}
		}
	}
	check(-1)
	links.cut(0)
	check(0)
	links.cut(-1)
	check(-1)
}

// An etcd-like member: answers every request at once, except /stream,
// which it answers with a line every 10 ms until the request ends.
func peerServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			return
		}
		for r.Context().Err() == nil {
			if _, err := w.Write([]byte("msg\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

func peerGet(t *testing.T, proxy, from, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+proxy+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(senderHeader, from)
	return (&http.Client{Timeout: 2 * time.Second}).Do(req)
}

func peerStatus(t *testing.T, proxy, from string) int {
	t.Helper()
	resp, err := peerGet(t, proxy, from, "/raft")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Cutting member 0 off refuses requests to it and requests from it (told
// by the sender header), ends its streams in flight, leaves the others'
// traffic alone, and heals.
func TestHTTPLinksCut(t *testing.T) {
	h, err := newHTTPLinks([]string{peerServer(t), peerServer(t), peerServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	h.learn([]uint64{0xa, 0xb, 0xc})
	stream, err := peerGet(t, h.addrs[0], "b", "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	lines := bufio.NewReader(stream.Body)
	if _, err := lines.ReadString('\n'); err != nil {
		t.Fatalf("stream before the cut: %v", err)
	}
	if peerStatus(t, h.addrs[1], "a") != http.StatusOK || peerStatus(t, h.addrs[0], "b") != http.StatusOK {
		t.Fatal("requests fail before the cut")
	}
	h.cut(0)
	cut := time.Now()
	for {
		if _, err := lines.ReadString('\n'); err != nil {
			break
		}
		if time.Since(cut) > time.Second {
			t.Fatal("a stream to the cut-off member still carries messages")
		}
	}
	for _, c := range []struct {
		to   int
		from string
	}{{0, "b"}, {0, "c"}, {1, "a"}, {2, "a"}} {
		if got := peerStatus(t, h.addrs[c.to], c.from); got != http.StatusServiceUnavailable {
			t.Fatalf("from %s to member %d across the cut: status %d", c.from, c.to, got)
		}
	}
	if peerStatus(t, h.addrs[1], "c") != http.StatusOK || peerStatus(t, h.addrs[2], "b") != http.StatusOK {
		t.Fatal("the majority's requests were cut")
	}
	h.cut(-1)
	if peerStatus(t, h.addrs[0], "b") != http.StatusOK || peerStatus(t, h.addrs[1], "a") != http.StatusOK {
		t.Fatal("requests fail after the heal")
	}
}
