package sim

import (
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
)

// message travels between a client and the node on the client's
// connection (epoch): an input, a reply to one, or an event.
type message struct {
	client  int
	epoch   uint64
	session spec.SessionID
	call    protocol.CallID
	input   spec.Input  // to the node
	reply   spec.Result // to the client, unless event is set
	event   *spec.Event
	conn    int8 // a local notice to a paused client: +1 connected, -1 disconnected
	// In a cluster: the member the connection goes to, and a member's
	// refusal: it is not the leader, leader is (0: none known).
	member    int
	notLeader bool
	leader    int
}

// delay draws a message's time in flight: mostly between DelayMin and
// DelayMax, a few slow ones (in the safety phase) up to SlowMax.
func (s *Sim) delay() spec.Time {
	o := &s.opts
	d := between(s.rng, o.DelayMin, o.DelayMax)
	if s.faulty() && percent(s.rng, o.SlowPercent) {
		d = between(s.rng, o.DelayMax, o.SlowMax)
	}
	return s.now.Add(d)
}

// transmit sends m on the network: in the safety phase it may be dropped
// or duplicated, and it is lost if its client is cut off.
func (s *Sim) transmit(m *message, kind evKind) {
	c := s.clients[m.client]
	if c.cutOff() || s.faulty() && percent(s.rng, s.opts.DropPercent) {
		if s.tr != nil {
			s.tr.ev(s.now, "drop").int("c", int64(m.client)).int("call", int64(m.call)).bool("to_node", kind == evNodeArrive).end()
		}
		return
	}
	s.schedule(event{at: s.delay(), kind: kind, c: m.client, msg: m})
	if s.faulty() && percent(s.rng, s.opts.DupPercent) {
		s.schedule(event{at: s.delay(), kind: kind, c: m.client, msg: m})
	}
}

func (s *Sim) sendToNode(m *message) { s.transmit(m, evNodeArrive) }

// sendEvents sends each event to the client of its session.
func (s *Sim) sendEvents(events []spec.Event) {
	for i := range events {
		e := events[i]
		if rec := s.owners[e.Session]; rec != nil {
			s.sendToClient(&message{client: rec.client, session: e.Session, event: &e})
		}
	}
}

// sendToClient sends m to its client: a reply on the connection its
// request came by (m.epoch), an event on the client's current one.
func (s *Sim) sendToClient(m *message) {
	if m.epoch == 0 {
		m.epoch = s.clients[m.client].epoch
	}
	s.transmit(m, evClientArrive)
}
