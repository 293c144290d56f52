package bench

import (
	"testing"
	"time"
)

// TestFloors: each floor runs on loopback and counts round trips and CPU;
// an fsync takes some time.
func TestFloors(t *testing.T) {
	for name, measure := range map[string]func(int, time.Duration) (Floor, error){
		"tcp": TCPFloor, "grpc stream": GRPCStreamFloor,
	} {
		f, err := measure(4, 200*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.RoundTrips == 0 || f.PerSecond() <= 0 || f.CPUPer() <= 0 {
			t.Fatalf("%s: %+v", name, f)
		}
		t.Logf("%s: %v", name, f)
	}
	d, err := FsyncLatency(t.TempDir(), 5)
	if err != nil || d <= 0 {
		t.Fatalf("fsync: %v, %v", d, err)
	}
	if _, err := FsyncLatency("", 0); err == nil {
		t.Fatal("n=0 was accepted")
	}
}
