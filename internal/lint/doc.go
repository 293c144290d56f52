// Package lint holds the module's lint, which is a Go test (go test
// ./internal/lint): it reads the module's source and fails on what the
// compiler accepts but the design forbids. It has no code of its own to
// import.
//
// # Purity
//
// The packages whose outputs must be a function of their inputs alone (the
// spec model, the engine's core, the client's protocol core, the
// simulator) are listed in pure, each with the rule set it promises and the
// edge files it may exclude:
//
//   - core: no goroutine, no channel, no clock, no randomness, no I/O (os,
//     net, io, sync, ...), and no map iteration whose order may reach an
//     output (sort after it, or say "map order:" inside the loop why the
//     order cannot matter).
//   - seeded: the simulator's promise. As core, except that it may use
//     math/rand/v2 generators it seeds itself (rand.New, never the global
//     functions), Pebble's in-memory file system, io, and a mutex (Pebble's
//     own goroutines call into it).
//
// To hold a new package to a rule set, add a line to pure. Each rule set has
// a planted file under testdata/ that breaks each of its rules once, and the
// test requires the lint to report every one.
//
// # Import direction
//
// Imports between the module's top-level packages point down the layering
// (spec, engine, client, linearizability, sim, server, bench, cmd) and
// never back up: allowedImports says which of ours each may import. A new
// top-level directory fails the lint until it is added there; the planted
// tree testdata/imports shows both failures.
package lint
