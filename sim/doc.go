// Package sim is Bouncer's deterministic simulator: the real engine (core
// and Pebble store on vfs.NewCrashableMem) and the real client protocol core
// (core.Session), driven in virtual time through network, clock, crash and
// disk faults, and judged by checkers that have each been seen to fail (the
// planted-bug zoo, bugzoo_on.go).
//
// # One seed fixes everything
//
// NewOptions(seed) derives the run's options (swarm testing: clients,
// resources, the workload's mix, which fault kinds are on and how often).
// Run(options, config) then pops events from one queue ordered by (true
// time, order of scheduling) until the run ends: no goroutine of its own,
// no clock, no unseeded randomness. Pebble runs its own goroutines inside
// the store; nothing observable depends on them, because every turn the
// node acknowledges is synced before Run goes on, crash images keep either
// none or all unsynced data (CrashClone draws per file in map order), and
// the injected faults count only write-ahead-log operations of the commit
// the simulator is waiting for. The same seed gives the same NDJSON trace
// byte for byte (TestDeterministicTrace).
//
// # The run
//
//  1. The safety phase (Options.Safety): clients open sessions and take,
//     convert, release and cancel locks and write to fenced resources,
//     while messages are delayed, reordered, dropped and duplicated,
//     clients are partitioned, reset and paused (stop the world, past their
//     lease), their clocks drift, and the node crashes (between turns, in
//     the middle of a commit, while a commit's answers wait) or fails a
//     write (fail-stop) and restarts through the engine's recovery.
//  2. The heal: every fault ends at once; the workload goes on (Calm).
//  3. The drain: clients finish, release and close; every request must
//     resolve and every session close within Options.LivenessBound, and
//     then the node must hold nothing.
//
// # The checkers
//
//   - linearizability: Porcupine on what clients observed, per resource
//     (package linearizability);
//   - mutex: no two sessions believe at one true instant that they hold
//     conflicting modes (beliefs end at the lease deadline the client
//     computes with its drifting clock, paused or not);
//   - fencing: each resource's store rejects writes below the highest token
//     it has seen; a write must be applied exactly when no write under a
//     later grant was applied before it;
//   - tokens: every new grant's token is above every token sent before on
//     its resource, across crashes, and no token goes to two sessions;
//   - invariants: spec.CheckInvariants and spec.CheckTransition on the
//     engine's state, and the core's own structures;
//   - model: the engine's replies and events equal spec.Model's at every
//     turn, its state too (Options.CheckEvery), and a recovered state is one
//     the model reaches from a durable state (trace validation);
//   - liveness: the drain ends in time and the node ends empty.
//
// A failure is correctness (a safety checker), liveness, or crash (the
// engine panicked or could not recover its store). See README.md.
package sim
