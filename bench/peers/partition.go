package peers

// Partitions of a group on loopback: the members' raft traffic goes
// through proxies in the harness's process, which can cut one member off
// from the others while the clients still reach every member directly.
// Bouncer's members each get their own address for every other member (a
// TCP proxy per ordered pair, package linkproxy); etcd's members all reach a member at one
// advertised address, so its proxy reads the sender from the header every
// etcd peer request carries (X-Server-From).

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/internal/linkproxy"
)

// pairLinks are the TCP proxies of a group of n: links[i][j] carries
// member i's connections to member j (nil for i == j).
type pairLinks [][]*linkproxy.Proxy

func newPairLinks(peerAddrs []string) (pairLinks, error) {
	n := len(peerAddrs)
	links := make(pairLinks, n)
	for i := range n {
		links[i] = make([]*linkproxy.Proxy, n)
		for j := range n {
			if i == j {
				continue
			}
			p, err := linkproxy.New(peerAddrs[j])
			if err != nil {
				links.close()
				return nil, err
			}
			links[i][j] = p
		}
	}
	return links, nil
}

// cut cuts member m off from the others (m < 0: heals every link).
func (l pairLinks) cut(m int) {
	for i := range l {
		for j, p := range l[i] {
			if p != nil {
				p.SetCut(m >= 0 && (i == m || j == m))
			}
		}
	}
}

func (l pairLinks) close() {
	for _, row := range l {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
}

// senderHeader names the sending member in every etcd peer request (its
// member id in hex).
const senderHeader = "X-Server-From"

// httpLinks are the HTTP proxies of an etcd group, one per member (the
// address the others reach it at), which tell the sender by senderHeader.
type httpLinks struct {
	proxies []*http.Server
	addrs   []string // the proxies' addresses, by member

	mu   sync.Mutex
	cutM int               // the member cut off, or -1
	ids  map[string]int    // member id (hex) -> member index
	live map[*liveReq]bool // requests in flight
}

type liveReq struct {
	from, to int // member indexes (from -1: unknown)
	cancel   context.CancelFunc
}

func newHTTPLinks(peerAddrs []string) (*httpLinks, error) {
	h := &httpLinks{cutM: -1, ids: map[string]int{}, live: map[*liveReq]bool{}}
	for to, target := range peerAddrs {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.close()
			return nil, err
		}
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
		rp.FlushInterval = -1                    // raft's streams: every write goes through at once
		rp.ErrorLog = log.New(io.Discard, "", 0) // a cut or a killed member ends copies midway
		rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
		srv := &http.Server{Handler: h.handler(to, rp), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(lis) }()
		h.proxies = append(h.proxies, srv)
		h.addrs = append(h.addrs, lis.Addr().String())
	}
	return h, nil
}

// learn maps the members' ids to their indexes (by member index).
func (h *httpLinks) learn(ids []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, id := range ids {
		h.ids[strconv.FormatUint(id, 16)] = i
	}
}

func (h *httpLinks) handler(to int, rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		from, ok := h.ids[r.Header.Get(senderHeader)]
		if !ok {
			from = -1
		}
		if h.blocked(from, to) {
			h.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		lr := &liveReq{from: from, to: to, cancel: cancel}
		h.live[lr] = true
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.live, lr)
			h.mu.Unlock()
			cancel()
		}()
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
}

// blocked reports whether traffic from one member to another is cut; h.mu
// is held.
func (h *httpLinks) blocked(from, to int) bool {
	return h.cutM >= 0 && (to == h.cutM || from == h.cutM)
}

// cut cuts member m off from the others (m < 0: heals), ending what is in
// flight between them.
func (h *httpLinks) cut(m int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cutM = m
	for lr := range h.live {
		if h.blocked(lr.from, lr.to) {
			lr.cancel()
		}
	}
}

func (h *httpLinks) close() {
	for _, s := range h.proxies {
		_ = s.Close()
	}
}

// etcdMemberIDs asks each member (by index) for its member id.
func etcdMemberIDs(ctx context.Context, addrs []string) ([]uint64, error) {
	sts, err := etcdStatuses(ctx, addrs)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(addrs))
	for i, st := range sts {
		if st == nil || st.Header == nil || st.Header.MemberId == 0 {
			return nil, fmt.Errorf("etcd status: member %d gave no member id", i+1)
		}
		ids[i] = st.Header.MemberId
	}
	return ids, nil
}
