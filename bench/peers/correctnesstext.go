package peers

// correctnessPreamble opens CORRECTNESS.md: what the run does and how to
// read it. The results follow it, written by the run.
const correctnessPreamble = `# Correctness side by side: Bouncer, etcd and Redis locks under the same faults

How often does a lock service, under the same faults, let two clients believe they hold the same
lock, and would fencing have saved them? One command runs the same workload and the same faults
against each system and judges each with the same checkers:

` + "```sh" + `
bench/peers/correctness.sh             # every system, fault and seed below: about 11 minutes here
CORRECTNESS_WORK=/tmp/c34 bench/peers/correctness.sh -seeds 3,4 -md /tmp/c34.md   # other seeds
bench/peers/correctness.sh -report-again -also /tmp/c34/runs    # this page again, with both runs' tables
` + "```" + `

## What runs

Everything is a process of its own on 127.0.0.1: the server (` + "`bouncer serve`" + `, Pebble, fsync before
every acknowledgement; ` + "`cmd/etcdnode`" + `, embedded etcd 3.7 with its defaults; ` + "`redis-server`" + `
7.0 from Debian with its defaults, **redis-default** and **redis-fenced**, or with
` + "`--appendonly yes --appendfsync always`" + `, **redis-always**), or a group of three members for **bouncer-3** and **etcd-3** (raft in both; the
clients are given every member's address), three client processes, and the harness, which holds the
**fenced store**: a small store, shared by the clients of one run over loopback HTTP, that refuses a
write whose token is lower than the highest it has taken for that resource.

Each client locks one of two resources at random (wait up to 5 s), and while it believes it holds the
lock writes to the store ten times, 100 ms apart, then releases it: before each write it checks its lease
and stops if the lease may be gone, then prepares the write for 100 ms (the window a pause hurts: checked,
not yet written). Every session and lock has a lease of 3 s.

| system | lock | fencing token | the client's count of its lease |
|---|---|---|---|
| bouncer, bouncer-3 | the Go client: a session, ` + "`Session.Lock`" + ` in EX | the grant's token | ` + "`Session.LeaseDeadline`" + ` (from the send time of the last answered keepalive, shrunk for drift) |
| etcd, etcd-3 | ` + "`concurrency.Mutex`" + ` on a lease-backed ` + "`concurrency.Session`" + ` | the lock key's create revision | send time of the last answered renewal (the client renews the lease itself too, to know it) plus the TTL |
| redis-default, redis-always | ` + "`SET key value NX PX 3000`" + ` with a random value, release by compare-and-delete (Lua) | none: the store gets 0, so it takes every write | send time of the ` + "`SET`" + ` plus the TTL (the recipe's validity) |
| redis-fenced | the same, Redisson-style: one script does the ` + "`SET NX PX`" + ` and, if it took the key, ` + "`INCR`" + ` of a counter per resource | the counter's value | the same |

**Faults**, one per run, each on a schedule that comes from the seed and is the same for every system.
Each strikes 1.5 to 3 s into the run, at the moment a client next holds a lock (it prints a line after
checking its lease, before preparing its first write):
- **none**: the control.
- **pause-client**: the harness sends that client SIGSTOP, and SIGCONT two leases (6 s) later: the
  garbage-collection pause.
- **pause-server**: the server gets SIGSTOP, and SIGCONT two leases (6 s) later; in a group, the leader: it
  wakes up with an old term after the others have elected another leader, as a leader cut off from
  everyone for that long would.
- **kill-server**: the server gets SIGKILL and is started again on its data and its address 200 to 700 ms
  later, as a supervisor would; in a group, the leader.
- **partition-leader** (groups only): every raft link between members goes through a proxy in the
  harness; the leader's links to and from the other members are cut for two leases (6 s), while the
  clients still reach every member. Bouncer's members are given a proxy for each other member; etcd's
  members advertise a proxy that tells the sender by the header every etcd peer request carries.

## The verdicts

- **linearizable**: every client records what it observed, in the history format ` + "`bouncer check`" + ` reads
  (linearizability/doc.go): each acquire (EX, its token), release and close, with call and return times,
  and the outcomes it never learned as unknown; a session the client knows may have expired, as an expiry
  that came no earlier than its own count of the lease ran out. The harness merges the clients' histories
  and checks them with ` + "`bouncer check`" + `, which on a failure writes its replay page and Porcupine's
  visualization beside the history (linked below for each violation shown). For etcd and
  Redis a grant's value block is Bouncer's empty, valid one (they have none). Redis has no session: each
  lock is a session of its own, named by its random value. The plain recipe has no token: the harness
  numbers its grants of each resource in the order their answers came, for the checker only, so it is
  checked for exclusion, not token order; redis-fenced's counter is checked as a token. etcd's
  ` + "`Lock`" + ` that times out is recorded as a grant and a release, both unknown: its key may already own
  the lock when the wait runs out, and ` + "`Lock`" + ` deletes it before returning, without saying whether the
  delete took.
- **client-view overlaps**: a client believes it holds a lock from the grant's answer until it calls the
  release, or until its own count of the lease runs out (the last deadline it read), whichever comes
  first, as the simulator's client-view check counts it. Two clients whose beliefs in one lock overlap
  are a violation; the table gives how many such pairs, their total and the longest.
- **lost acknowledged grants**: at the end of each hold, while its own count of the lease still says it
  holds the lock, the client asks the service whether it does (Bouncer: ` + "`CheckSequencer`" + ` on the grant's
  sequencer, answered from the durable state through the leader; etcd: a linearizable read of the
  mutex's key, which must still have the grant's create revision under the session's lease; Redis:
  ` + "`GET`" + ` of the key, which must still have the lock's random value). An answer of no that came before the
  lease could have run out is a grant the service acknowledged and then lost; the table gives them out
  of the holds read in time.
- **stale writes**: a write whose grant is older than the grant of a write the store took before (the
  order of grants is the order their answers came, for every system). Taken: the store took it (the
  resource was corrupted). Refused by the fence: the token stopped it: a write an unfenced resource
  would have taken. **Taken out of token order** checks the fence itself. **Newest grant's writes
  refused**: writes of the newest grant of a resource that the fence refused all the same, their token
  lower than an older grant's: the service's tokens went back, and the holder is locked out of what its
  lock protects.
- **availability**: the share of the run, averaged over the two resources, in which some client
  believed it held the resource's lock (each client also thinks up to 20 ms between holds).
- **planted faults**: each checker is run again, in the same run, on records with a fault planted in
  them, and must catch it, so that a clean verdict means something.

`

// correctnessNotes closes CORRECTNESS.md: why the table looks as it does,
// and what the run does not cover yet.
const correctnessNotes = `
## Reading the table

**A client paused past its lease** (pause-client): no system shows a client-view overlap or a lost grant,
and every history checks. The paused client's belief ends at its own count of the lease, which runs out
during the pause, and the service gives the lock to another client only once the lease has run out there
too. The harm is in the resource: the paused client checked its lease before the pause and, on waking,
sends the write it had prepared. Bouncer, etcd and redis-fenced hand out tokens, and the store refuses that
write (one refusal per run: a write an unfenced resource would have taken). The plain Redis recipe has no
token, so the store takes it (one stale write per run, with ` + "`appendfsync always`" + ` as with the defaults:
durability does not help here). This is the classic case for fencing, and a token counter beside the key
is enough to make Redis's recipe refuse it.

**A server paused for two leases** (pause-server): the clients' counts of their leases run out during
the pause, so nobody believes it holds a lock when the server wakes up and ends every lease at once.
A lone server stops everyone while it is stopped (availability falls); a group elects another leader
and goes on. etcd's group is the exception: in some runs a lease ends about a second after etcd answered
a renewal of it with its full 3 s, right after the paused leader woke up; the client learns it at its
next renewal ("requested lease not found", from a member that was never paused), and a lock it held
then was lost with the lease. The history check names it ("session ... ended by 8.3s, before its lease
could have run out at 10.5s"), and the excerpt below shows the client's own log of its renewals. Our
reading of etcd's code is that the leader that wakes up still takes itself for the leader for a moment,
finds every lease expired (no renewal reached it for six seconds) and proposes their revocation, which
the new leader commits: etcd checks that it still leads before it revokes, but skips that check while
its raft ticks are recent, as they are a moment after a paused process continues. Whether it strikes
depends on how the wake-up falls (in a separate run of this fault alone, 3 seeds of 8). In Bouncer, a
session's expiry is an entry of the log stamped with the leader's time: a leader that wakes up after it
was replaced cannot commit one.

**A server killed and restarted** (kill-server): Redis with its defaults keeps its keys in memory only
(its RDB snapshots come after 60 s at the earliest), so the restarted server has forgotten the lock.
The holder's read at the end of its hold finds the key gone (a lost acknowledged grant); when another
client asks before that, its ` + "`SET NX`" + ` succeeds and both write (a client-view overlap of the rest of the
hold, and stale writes taken); the history fails either way. redis-fenced forgets its token counter too:
the next grant's token starts again at 1, below those before the restart, so the fence refuses the new
holder's writes while the old holder, which still believes, goes on writing: the store keeps its order,
but the lock protects nothing for the new holder until the counter passes its old value (the newest
grant's writes refused). With ` + "`--appendfsync always`" + ` the key and the counter are on disk before the
answer. Bouncer (fsync before every answer) and etcd (its WAL fsynced) show none, alone or as a group
whose leader is killed.

**The leader cut off from its members** (partition-leader): both groups elect another leader on the
majority's side, and the clients, which reach every member, follow it; no violation in either. The cut-off
leader cannot commit anything, and reads go through the leader's quorum in both (Bouncer's ReadIndex,
etcd's linearizable reads).

**Availability** is the share of time some client believed it held each lock; a run's three clients keep
a lock held about 70% of the time without faults. It falls where the fault stops the service (a lone
server paused: nobody can lock for 6 s of the 10) and where the clients wait out a lease.

## Not covered yet

- Faults: a partition that cuts the clients off from the leader but not the members from each other, or
  one member from one other; clock jumps; disk faults. Bouncer's simulator runs these (and more) against
  Bouncer alone.
- The workload takes exclusive locks only, on two resources, with three clients; no shared modes,
  conversions or semaphores, and no Redlock (several Redis masters).
- Runs on real processes are not repeatable to the millisecond: the faults strike on a fixed schedule,
  but what a fault meets depends on the machine's timing, so a violation that needs a narrow window
  (etcd's early lease end above) shows in some seeds and not others.
- Porcupine's pages are written for the failed checks only (` + "`bouncer check --html`" + ` writes them for any
  history).
`
