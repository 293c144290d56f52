package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
)

// The floor of a lock cycle on this machine, measured in the same run as
// the load so that a shared, noisy machine drifts both alike: what one
// request/response round trip costs with no lock service in the way (a
// raw length-prefixed TCP ping-pong, and a gRPC bidirectional stream
// ping-pong, each over as many loopback connections as the load uses, in
// this process), and what one fsync of a small write costs in the data
// directory's file system. A lock cycle (acquire, release) is two round
// trips and, on a node, shares fsyncs by group commit.

// Floor is a ping-pong's figures.
type Floor struct {
	RoundTrips int
	Elapsed    time.Duration
	CPU        time.Duration // this process's user+system CPU over the run
}

// PerSecond is round trips per second.
func (f Floor) PerSecond() float64 { return float64(f.RoundTrips) / f.Elapsed.Seconds() }

// CPUPer is the CPU one round trip cost.
func (f Floor) CPUPer() time.Duration {
	if f.RoundTrips == 0 {
		return 0
	}
	return f.CPU / time.Duration(f.RoundTrips)
}

func (f Floor) String() string {
	return fmt.Sprintf("round trips/s=%.0f cpu/round trip=%v", f.PerSecond(), f.CPUPer().Round(100*time.Nanosecond))
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pingPong runs conns loops of one round trip after another for d, and
// counts them; rt makes one round trip on connection i.
func pingPong(conns int, d time.Duration, rt func(i int) error) (Floor, error) {
	var wg sync.WaitGroup
	counts := make([]int, conns)
	errs := make(chan error, conns)
	stop := time.Now().Add(d)
	cpu0, t0 := processCPU(), time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := rt(i); err != nil {
					errs <- err
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	f := Floor{Elapsed: time.Since(t0), CPU: processCPU() - cpu0}
	close(errs)
	if err := <-errs; err != nil {
		return f, err
	}
	for _, n := range counts {
		f.RoundTrips += n
	}
	return f, nil
}

// TCPFloor measures a raw TCP ping-pong (8-byte length-prefixed messages,
// echoed) over conns loopback connections for d.
func TCPFloor(conns int, d time.Duration) (Floor, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Floor{}, err
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 12)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	cs := make([]net.Conn, conns)
	for i := range cs {
		if cs[i], err = net.Dial("tcp", lis.Addr().String()); err != nil {
			return Floor{}, err
		}
		defer cs[i].Close()
	}
	bufs := make([][]byte, conns)
	for i := range bufs {
		bufs[i] = make([]byte, 12)
		binary.BigEndian.PutUint32(bufs[i], 8)
	}
	return pingPong(conns, d, func(i int) error {
		if _, err := cs[i].Write(bufs[i]); err != nil {
			return err
		}
		_, err := io.ReadFull(cs[i], bufs[i])
		return err
	})
}

// rawCodec passes byte slices through gRPC unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, errors.New("bench: not a *[]byte")
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return errors.New("bench: not a *[]byte")
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "bouncer-bench-raw" }

func init() { encoding.RegisterCodec(rawCodec{}) }

var pingDesc = grpc.ServiceDesc{
	ServiceName: "bouncer.bench.Ping",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{StreamName: "Ping", ServerStreams: true, ClientStreams: true,
		Handler: func(_ any, s grpc.ServerStream) error {
			var b []byte
			for {
				if err := s.RecvMsg(&b); err != nil {
					return nil
				}
				if err := s.SendMsg(&b); err != nil {
					return err
				}
			}
		}}},
}

// GRPCStreamFloor measures a gRPC bidirectional-stream ping-pong (8-byte
// messages), one stream on each of conns loopback connections, for d.
func GRPCStreamFloor(conns int, d time.Duration) (Floor, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Floor{}, err
	}
	g := grpc.NewServer()
	g.RegisterService(&pingDesc, nil)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]grpc.ClientStream, conns)
	for i := range streams {
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			return Floor{}, err
		}
		defer cc.Close()
		if streams[i], err = cc.NewStream(ctx, &pingDesc.Streams[0], "/bouncer.bench.Ping/Ping"); err != nil {
			return Floor{}, err
		}
	}
	msgs := make([][]byte, conns)
	for i := range msgs {
		msgs[i] = make([]byte, 8)
	}
	return pingPong(conns, d, func(i int) error {
		if err := streams[i].SendMsg(&msgs[i]); err != nil {
			return err
		}
		return streams[i].RecvMsg(&msgs[i])
	})
}

// FsyncLatency writes 4 KiB and fdatasyncs it n times in a fresh file in
// dir ("" for the temporary directory) and returns the median latency.
func FsyncLatency(dir string, n int) (time.Duration, error) {
	if n <= 0 {
		return 0, errors.New("bench: n must be positive")
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "bouncer-fsync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	block := make([]byte, 4096)
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if _, err := f.Write(block); err != nil {
			return 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	return lat[n/2], nil
}
