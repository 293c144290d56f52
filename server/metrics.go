package server

import (
	"sync/atomic"
	"time"

	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus metrics. Gauges read counts the loop
// stores after each turn; histograms are observed where things happen.
type metrics struct {
	sessions, resources, locks, queued, tokens atomic.Int64

	wait    prometheus.Histogram // how long queued acquires and conversions waited
	commit  prometheus.Histogram // a turn: stepping through the synced commit
	batch   prometheus.Histogram // inputs per turn
	fsyncs  prometheus.Counter
	grants  prometheus.Counter // tokens issued: grants and up-conversions
	lastTok atomic.Int64

	diskFull atomic.Int64 // 1 while the disk is full and writes are refused

	// A member of a group: the leader it knows (0: none), 1 while it leads,
	// and the changes of leader it saw.
	lead, leading                        atomic.Int64
	leaderChanges                        prometheus.Counter
	term, commitIndex, applied, inFlight atomic.Int64
	peerRTT                              prometheus.Histogram
	snapshotsSent                        prometheus.Counter

	// longestWait reads the longest current wait, in seconds, when the
	// metrics are scraped (set by the server; see Server.longestWaitSeconds).
	longestWait func() float64

	conns   prometheus.Gauge       // connections held (Server.Listen)
	refused *prometheus.CounterVec // calls and connections refused by a bound, by reason

	accessReloads *prometheus.CounterVec // reloads of the access file, by result
	accessDenied  prometheus.Counter     // calls and pipe requests outside their caller's grants
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bouncer_wait_seconds",
			Help:    "How long acquires and conversions that queued waited for their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12)}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bouncer_turn_seconds",
			Help:    "How long a loop turn took: from stepping its inputs until its batch was durable.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bouncer_turn_inputs",
			Help:    "Inputs per loop turn (group commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "bouncer_fsyncs_total",
			Help: "Turns that wrote a batch and waited for its sync (turns in flight together may share one fsync)."}),
		grants: prometheus.NewCounter(prometheus.CounterOpts{Name: "bouncer_tokens_issued_total",
			Help: "Fencing tokens issued: grants and up-conversions."}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bouncer_connections",
			Help: "Client connections held, under ConnectionsMax."}),
		peerRTT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bouncer_peer_rtt_seconds",
			Help:    "On the leader: from a heartbeat sent to a member to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		snapshotsSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "bouncer_snapshots_sent_total",
			Help: "Snapshots this member sent to members too far behind its log."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "bouncer_leader_changes_total",
			Help: "Changes of the leader this member knows (a member of a group)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bouncer_refused_total",
			Help: "Connections and calls refused by a bound (connections, sessions, requests, streams per client)."},
			[]string{"reason"}),
		accessReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bouncer_access_reloads_total",
			Help: "Reloads of the access file (SIGHUP), by result: ok, or failed (the old rules stay)."},
			[]string{"result"}),
		accessDenied: prometheus.NewCounter(prometheus.CounterOpts{Name: "bouncer_access_denied_total",
			Help: "Calls and pipe requests refused with PERMISSION_DENIED: outside their identity's grants."}),
	}
	if reg == nil {
		return m
	}
	gauge := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(m.wait, m.commit, m.batch, m.fsyncs, m.grants, m.conns, m.refused, m.leaderChanges,
		m.peerRTT, m.snapshotsSent, m.accessReloads, m.accessDenied,
		gauge("bouncer_leader", "The raft id of the leader this member knows (0: none; a lone node: 0).", &m.lead),
		gauge("bouncer_is_leader", "1 while this member leads its group.", &m.leading),
		gauge("bouncer_raft_term", "The raft term this member is in.", &m.term),
		gauge("bouncer_raft_commit_index", "The commit index this member knows.", &m.commitIndex),
		gauge("bouncer_raft_applied_index", "The index this member has applied (commit minus applied: its apply lag).", &m.applied),
		gauge("bouncer_proposals_in_flight", "This member's proposals not yet answered.", &m.inFlight),
		gauge("bouncer_sessions", "Live sessions.", &m.sessions),
		gauge("bouncer_resources", "Resources in use.", &m.resources),
		gauge("bouncer_locks_held", "Granted locks.", &m.locks),
		gauge("bouncer_waiters", "Queued acquires and conversions.", &m.queued),
		gauge("bouncer_disk_full", "1 while the disk is full and the node refuses writes with Unavailable.", &m.diskFull),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bouncer_longest_wait_seconds",
			Help: "The longest any queued acquire or conversion has waited so far, read at scrape (0: none waits; on a member, only the leader reports)."},
			func() float64 {
				if m.longestWait == nil {
					return 0
				}
				return m.longestWait()
			}))
	return m
}

// leader records a member's view of its leader (on the loop goroutine).
func (m *metrics) leader(lead uint64, leading bool) {
	if m.lead.Swap(int64(lead)) != int64(lead) {
		m.leaderChanges.Inc()
	}
	v := int64(0)
	if leading {
		v = 1
	}
	m.leading.Store(v)
}

// member records a member's figures after a tick (on the loop goroutine).
func (m *metrics) member(f cluster.Figures) {
	m.term.Store(int64(f.Term))
	m.commitIndex.Store(int64(f.Commit))
	m.applied.Store(int64(f.Applied))
	m.inFlight.Store(int64(f.InFlight))
}

// peer records a heartbeat's round trip, or a snapshot sent.
func (m *metrics) peer(_ uint64, rtt time.Duration, snapshot bool) {
	if snapshot {
		m.snapshotsSent.Inc()
		return
	}
	m.peerRTT.Observe(rtt.Seconds())
}

// turn records a turn's figures (on the loop goroutine).
func (m *metrics) turn(t engine.TurnStats) {
	if t.Inputs > 0 {
		m.batch.Observe(float64(t.Inputs))
		m.commit.Observe(t.Duration.Seconds())
	}
	if t.Writes > 0 {
		m.fsyncs.Inc()
	}
}

// gauges records the state of a durable core.
func (m *metrics) gauges(st engine.Stats) {
	m.sessions.Store(int64(st.Sessions))
	m.resources.Store(int64(st.Resources))
	m.locks.Store(int64(st.Locks))
	m.queued.Store(int64(st.Queued))
	if prev := m.lastTok.Swap(int64(st.TokenMax)); prev != 0 && int64(st.TokenMax) > prev {
		m.grants.Add(float64(int64(st.TokenMax) - prev))
	}
}
