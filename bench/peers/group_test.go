package peers

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseBouncerStatus(t *testing.T) {
	// As `bouncer cluster status --json` prints it.
	const whole = `{"id":3,"leader":3,"term":2,"commit":5000,"applied":5000,"cluster_id":"bouncer","members":[` +
		`{"id":1,"client_addr":"127.0.0.1:17401","match":4999,"recent_active":true},{"id":2,"match":4500,"recent_active":true},` +
		`{"id":3,"match":5000,"recent_active":true}]}`
	lead, ok, err := parseBouncerStatus([]byte(whole), 3)
	if err != nil || lead != 2 || !ok {
		t.Fatalf("whole group: leader %d whole %v %v", lead, ok, err)
	}
	behind := strings.Replace(whole, `"match":4500`, `"match":3000`, 1)
	if _, ok, err := parseBouncerStatus([]byte(behind), 3); err != nil || ok {
		t.Fatalf("a member 2,000 entries behind: whole %v %v", ok, err)
	}
	down := strings.Replace(whole, `"match":4999,"recent_active":true`, `"match":4999,"recent_active":false`, 1)
	if _, ok, err := parseBouncerStatus([]byte(down), 3); err != nil || ok {
		t.Fatalf("a member inactive: whole %v %v", ok, err)
	}
	// A follower's own answer (the leader it names could not be asked).
	follower := strings.Replace(whole, `"id":3,"leader":3`, `"id":1,"leader":3`, 1)
	if _, _, err := parseBouncerStatus([]byte(follower), 3); err == nil {
		t.Fatal("a follower's answer gave a leader")
	}
	if _, _, err := parseBouncerStatus([]byte(`{"id":1,"leader":0}`), 3); err == nil {
		t.Fatal("no leader gave a leader")
	}
}

// fakeGroup is a group in memory: a kill stops every grant for outage,
// and meanwhile calls and dials fail.
type fakeGroup struct {
	m      *memLocks
	outage time.Duration
	down   atomic.Bool
	leader atomic.Int32
	kills  atomic.Int32
}

var errFakeDown = errors.New("fake: no leader")

func (f *fakeGroup) Endpoint() string { return "a,b,c" }

func (f *fakeGroup) Leader(ctx context.Context) (int, error) {
	for f.down.Load() {
		time.Sleep(time.Millisecond)
	}
	return int(f.leader.Load()), nil
}

func (f *fakeGroup) Kill(i int) error {
	f.down.Store(true)
	f.kills.Add(1)
	time.AfterFunc(f.outage, func() {
		f.leader.Store(int32((i + 1) % 3))
		f.down.Store(false)
	})
	return nil
}

func (f *fakeGroup) Restart(context.Context, int) error { return nil }

func (f *fakeGroup) ElectedSince(time.Time) (time.Time, bool) { return time.Time{}, false }

func (f *fakeGroup) dial(ctx context.Context, addr string) (Client, error) {
	if f.down.Load() {
		return nil, errFakeDown
	}
	return fakeClient{memClient{f.m}, f}, nil
}

type fakeClient struct {
	memClient
	f *fakeGroup
}

func (c fakeClient) Lock(ctx context.Context, r string, mode Mode) (Held, error) {
	if c.f.down.Load() {
		time.Sleep(time.Millisecond)
		return nil, errFakeDown
	}
	return c.memClient.Lock(ctx, r, mode)
}

func TestRunFailover(t *testing.T) {
	t.Run("retry", func(t *testing.T) { testRunFailover(t, 150*time.Millisecond) })
	// An outage past failoverRedialAfter: the clients open new ones.
	defer func(d time.Duration) { failoverRedialAfter = d }(failoverRedialAfter)
	failoverRedialAfter = 50 * time.Millisecond
	t.Run("redial", func(t *testing.T) { testRunFailover(t, 300*time.Millisecond) })
}

func testRunFailover(t *testing.T, outage time.Duration) {
	f := &fakeGroup{m: newMemLocks(), outage: outage}
	cfg := FailoverConfig{Kills: 2, Clients: 4, Grants: 50, Settle: 10 * time.Millisecond, Timeout: 5 * time.Second}
	ss, errs := RunFailover(context.Background(), f, f.dial, cfg, "t", t.Logf)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(ss) != 2 || f.kills.Load() != 2 {
		t.Fatalf("%d samples of %d kills", len(ss), f.kills.Load())
	}
	for _, s := range ss {
		if s.ToFirst < f.outage || s.ToN < s.ToFirst || s.Errors == 0 || s.Error != errFakeDown.Error() ||
			s.ErrorKinds[errFakeDown.Error()] != s.Errors {
			t.Errorf("sample %+v: want the first grant after the %v outage, failed calls counted", s, f.outage)
		}
	}
	if ss[0].Leader != 1 || ss[1].Leader != 2 {
		t.Errorf("killed members %d and %d, want 1 then 2", ss[0].Leader, ss[1].Leader)
	}
	row, ok := failoverMedian(ss)
	if !ok || row.Kills != 2 || row.MinFirst > row.ToFirst || row.ToFirst > row.MaxFirst {
		t.Fatalf("median %+v", row)
	}
}

func TestMarkdownGroups(t *testing.T) {
	sys := Systems("bouncer", "etcdnode", "redis-server")
	var plan []System
	for _, s := range sys {
		if s.Name == "bouncer" || s.Members > 0 {
			plan = append(plan, s)
		}
	}
	p := Plan{Systems: plan, Runs: 1, Timing: Timing{Warmup: time.Second, Window: time.Second},
		Cells: []Cell{{Uncontended, 8}, {Uncontended, 64}}, GroupCells: []Cell{{Uncontended, 64}, {Contended, 64}},
		Failover: FailoverConfig{Kills: 2, Clients: 64, Grants: 1000, Settle: 100 * time.Millisecond}}
	r := &Results{Plan: p, Samples: map[Key][]Sample{}, Errors: map[Key][]string{}, Start: time.Now(), Finished: time.Now(),
		Failover: map[string][]FailoverSample{}, FailoverErrors: map[string][]string{}}
	add := func(w Workload, clients int, system string, ops int) {
		r.Samples[Key{w, clients, system}] = []Sample{{Ops: ops, Granted: ops, Elapsed: time.Second, P99: time.Millisecond}}
	}
	add(Uncontended, 8, "bouncer", 2000)
	add(Uncontended, 64, "bouncer", 4000)
	add(Uncontended, 64, "bouncer-3", 3000)
	add(Uncontended, 64, "etcd-3", 500)
	add(Contended, 64, "bouncer-3", 600)
	r.Errors[Key{Contended, 64, "etcd-3"}] = []string{"boom"}
	r.Failover["bouncer-3"] = []FailoverSample{{Leader: 1, Elected: time.Second, ToFirst: 1200 * time.Millisecond, ToN: 1500 * time.Millisecond},
		{Leader: 2, Elected: 1300 * time.Millisecond, ToFirst: 1400 * time.Millisecond, ToN: 1700 * time.Millisecond}}
	r.Failover["etcd-3"] = []FailoverSample{{Leader: 3, ToFirst: 1300 * time.Millisecond, ToN: 2000 * time.Millisecond, Errors: 7, Error: "EOF",
		ErrorKinds: map[string]int{"EOF": 2, "request timed out": 5}}}
	md := Report{Results: r, Machine: Machine{CPU: "test"}}.Markdown()
	for _, want := range []string{
		"| uncontended | 64 | bouncer-3 | 3,000 |", "0.75x the ops/s of one bouncer node",
		"| uncontended | 64 | etcd-3 | 500 |", "| 6.00x |", "ratios: bouncer-3 ÷ this",
		"| contended | 64 | etcd-3 | failed |",
		"| groups of 3: uncontended throughput, bouncer-3 vs etcd-3 | ≥ 5x | 6.00x | met |",
		"| groups of 3: contended throughput, bouncer-3 vs etcd-3 | ≥ 5x | not measured | |",
		"| uncontended throughput, bouncer-3 vs one bouncer node | ≥ 0.5x | 0.75x | met |",
		"| failover, leader SIGKILLed: median time to the first grant, bouncer-3 vs etcd-3 | ≤ 1x | 1.00x | met |",
		"| failover, leader SIGKILLed: median time to 1,000 grants, bouncer-3 vs etcd-3 | ≤ 1x | 0.80x | met |",
		"| bouncer-3 | 2 | 1150 ms | 1300 ms | 1200 ms – 1400 ms | 150 ms | 1600 ms |",
		"| etcd-3 | 1 | – | 1300 ms | 1300 ms – 1300 ms | – | 2000 ms |", "the errors: 5× `request timed out`, 2× `EOF`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, unwanted := range []string{"| uncontended | 8 | bouncer-3 |", "vs Redis", "**held locks**"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("report has %q:\n%s", unwanted, md)
		}
	}
}
