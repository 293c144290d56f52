package protocol

// bugs are the mistakes the bugzoo build can plant in the client core (see
// bugzoo_on.go), by name, with what each gets wrong. Each is a real mistake
// of lock clients; each hook is one `if bugzooOn && planted(name)`, a
// constant-false test outside that build. The engine names its bugs the
// same way (engine/bugzoo_on.go), and the simulator's zoo covers both.
var bugs = []struct{ name, doc string }{
	{"client-lease-from-receive", "the lease is counted from when a keepalive's answer arrived, not from when it was sent: the client believes in its lease a round trip too long (io.go)"},
	{"client-no-poll", "a queued request is never asked about again, so a lost Completed event leaves it waiting forever (io.go)"},
}
