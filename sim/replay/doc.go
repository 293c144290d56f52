// Package replay builds the page to learn from: one self-contained HTML
// file (its style, script and data inline; nothing fetched, nothing to
// build) that replays a simulated run step by step. A reader moves
// through the run's steps and sees, at each instant, a timeline per
// session (requests, grants, waits, keepalives, pauses, partitions,
// crashes), each resource's granted, conversion and wait queues with its
// value block and fencing tokens, the wait-for graph (spec.WaitsFor), and,
// for a failing seed, the first violation in the checker's own words.
//
// A Recorder gathers a run as it happens: the simulator's NDJSON trace
// (sim.Config.Trace) for the events, and the node's state after each turn
// that changed it (sim.Config.States) for the queues. FromHistory builds a
// poorer page from a client history alone (bouncer check), where the
// queues are only what the clients observed.
//
// The page's data is bounded (MaxEvents, MaxStates; the page says when it
// was cut), and the same run always gives the same page, byte for byte:
// nothing here reads a clock or ranges over a map into the output.
package replay
