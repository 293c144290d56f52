package peers

// The fenced store of the correctness run: the resource the clients'
// locks protect. It lives in the harness's process and the clients of one
// run write to it over loopback HTTP while they believe they hold a lock.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// StoreWrite is one write the store received: when it arrived (nanoseconds
// since the run's epoch), from which client, on which resource, with the
// lock's fencing token (0 for a system without tokens) and when the
// writer's grant was answered (its Grant: the order of grants of one
// resource, for every system), and whether the store took it.
type StoreWrite struct {
	At       int64  `json:"at"`
	Client   int    `json:"client"`
	Resource string `json:"resource"`
	Token    uint64 `json:"token"`
	Grant    int64  `json:"grant"`
	Accepted bool   `json:"accepted"`
}

// FencedStore refuses a write whose token is lower than the highest it has
// taken for that resource. Token 0 (Redis: no token) is never lower than
// another 0, so such writes all pass: what an unfenced resource would do.
type FencedStore struct {
	Epoch time.Time

	mu   sync.Mutex
	max  map[string]uint64
	log  []StoreWrite
	full bool
}

// storeLogMax bounds the log (a run makes a few thousand writes).
const storeLogMax = 1 << 20

// NewFencedStore is an empty store whose log times count from epoch.
func NewFencedStore(epoch time.Time) *FencedStore {
	return &FencedStore{Epoch: epoch, max: map[string]uint64{}}
}

// Write applies one write and reports whether the store took it.
func (s *FencedStore) Write(client int, resource string, token uint64, grant int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := token >= s.max[resource]
	if ok {
		s.max[resource] = token
	}
	if len(s.log) < storeLogMax {
		s.log = append(s.log, StoreWrite{At: int64(time.Since(s.Epoch)), Client: client, Resource: resource,
			Token: token, Grant: grant, Accepted: ok})
	} else {
		s.full = true
	}
	return ok
}

// Log is every write so far, in the order the store applied them.
func (s *FencedStore) Log() ([]StoreWrite, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return nil, fmt.Errorf("fenced store: log over %d writes", storeLogMax)
	}
	return append([]StoreWrite(nil), s.log...), nil
}

// writeRequest is a client's write, as JSON over HTTP.
type writeRequest struct {
	Client   int    `json:"client"`
	Resource string `json:"resource"`
	Token    uint64 `json:"token"`
	Grant    int64  `json:"grant"`
}

// Serve listens on 127.0.0.1 (a free port) and serves POST /write until
// the returned stop is called; the address is the second result.
func (s *FencedStore) Serve() (stop func(), addr string, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		var req writeRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
			http.Error(w, "fenced store: bad write: "+err.Error(), http.StatusBadRequest)
			return
		}
		ok := s.Write(req.Client, req.Resource, req.Token, req.Grant)
		_ = json.NewEncoder(w).Encode(map[string]bool{"accepted": ok})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, l.Addr().String(), nil
}

// StoreClient writes to a FencedStore over HTTP.
type StoreClient struct {
	URL string
	c   http.Client
}

// NewStoreClient writes to the store at addr.
func NewStoreClient(addr string) *StoreClient {
	return &StoreClient{URL: "http://" + addr + "/write", c: http.Client{Timeout: 10 * time.Second}}
}

// Write sends one write and reports whether the store took it.
func (c *StoreClient) Write(client int, resource string, token uint64, grant int64) (bool, error) {
	b, _ := json.Marshal(writeRequest{Client: client, Resource: resource, Token: token, Grant: grant})
	resp, err := c.c.Post(c.URL, "application/json", bytesReader(b))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("fenced store: %s", resp.Status)
	}
	var out struct{ Accepted bool }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, err
	}
	return out.Accepted, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
