// Package wire is the one mapping between spec's values and the protobuf
// messages of package api: modes, codes, session ids, durations, every
// op's request, results (grants, queued answers, refusals, status errors)
// and events. The server and the client both translate through it, so the
// two ends cannot drift apart.
//
// Each value has a ToWire and a FromWire. ToWire takes a value spec
// accepts and never fails. FromWire checks what it reads: a field that does
// not hold a known value (a mode or code the enum lacks, a session id of the
// wrong length, a negative or malformed duration, an op oneof that is unset)
// is an error, a *spec.Error with code InvalidArgument naming the field; it
// is never read as a default. Enum numbers are spec's: a Code is the same
// number on both sides, and a Mode is spec's number plus one, because
// protobuf reserves zero for MODE_UNSPECIFIED.
//
// What stays out: the server's defaults (a wait timeout from the call's
// deadline) and limits, which are checked by spec.Validate, and the
// session tags that Describe and Watch show in place of ids, which are
// the server's secret.
package wire
