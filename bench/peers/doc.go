// Package peers benchmarks Bouncer side by side with the lock services a
// user would pick instead: etcd (an embedded server with the client's
// concurrency.Mutex) and Redis (SET NX PX with a compare-and-delete script,
// once with appendfsync always and once with its defaults).
//
// Every system runs as a server process of its own on loopback, started
// fresh with its data on disk, so that its memory (RSS) is its own and the
// load generator (this process) costs every system the same. The same
// workloads, client counts, warm-up and measured window apply to every
// system; each run visits the systems in a rotated order, and the report
// takes the median of several runs, so a machine whose speed drifts still
// yields ratios measured side by side.
//
// It is a module of its own (bench/peers/go.mod) so that the peers' client
// libraries never enter Bouncer's main module. The command is cmd/peers,
// run by run.sh; cmd/etcdnode is the etcd server process.
package peers
