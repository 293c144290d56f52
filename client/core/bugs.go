package core

// bug names a mistake the bugzoo build can plant in the client core (see
// bugzoo_on.go). Each is a real mistake of lock clients; each hook is one
// constant-false test outside that build.
type bug uint8

const (
	// bugLeaseFromReceive counts the lease from the time a keepalive's
	// answer arrived rather than from when the keepalive was sent: the
	// client believes its lease lasts a round trip longer than the node
	// guarantees.
	bugLeaseFromReceive bug = iota + 1
	// bugNoPoll trusts the event stream: a queued request is never asked
	// about again, so a lost Completed event leaves it waiting forever.
	bugNoPoll

	bugsEnd
)

var bugNames = [...]string{"", "client-lease-from-receive", "client-no-poll"}
