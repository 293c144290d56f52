------------------------------- MODULE Bouncer -------------------------------
(***************************************************************************)
(* Bouncer, a lock service, as a TLA+ specification.                       *)
(*                                                                         *)
(* The same semantics are stated three times: here, for people who read    *)
(* and teach them; in the executable Go model spec/model.go, which says    *)
(* what Bouncer means when the two disagree; and in the engine, which the  *)
(* tests hold to the Go model step by step. README.md maps every action    *)
(* and property below to the Go code that implements and checks it.       *)
(*                                                                         *)
(* What is modelled:                                                       *)
(*   - sessions with leases (open, keepalive, expiry), one per client;     *)
(*   - per resource: the granted modes, the conversion queue, the wait     *)
(*     queue (strict FIFO, conversions first), fencing tokens, the value   *)
(*     block's validity, and deadlock refusal on the wait-for graph;       *)
(*   - counting semaphores: resources of Limit permits, each holder with   *)
(*     its own share of them in PR, granted in the same strict FIFO order  *)
(*     when they fit, never converted;                                     *)
(*   - durability: the node applies one batch in memory, writes it to      *)
(*     disk, and only then sends its replies (group commit); a crash       *)
(*     loses memory and keeps the disk; a restart gives every session a    *)
(*     full lease (the node cannot know how long it was down);             *)
(*   - clients' beliefs: what each client thinks it holds, and its lease   *)
(*     as it counts it with its own clock, which may run slow within a     *)
(*     bound, and stops when its process is suspended (Pause).             *)
(* Time is discrete (Tick) and kept as time left (countdowns), never as    *)
(* an absolute clock, so the state space is finite without a horizon.      *)
(*                                                                         *)
(* What is abstracted (and checked in Go instead): request ids and         *)
(* exactly-once retries, recorded outcomes, lock-delay, try-locks          *)
(* (NoQueue), Close, blocking notifications, the limits, and message       *)
(* delays (replies arrive in the instant they are sent). Wait timeouts    *)
(* are not timed: a queued request may time out at any moment, which      *)
(* covers every timing. What a value block says is left out: only whether *)
(* it is valid matters to any property.                                    *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Session,      \* the clients; each opens at most one session, named like itself
    Resource,     \* lock names
    Semaphores,   \* the resources that are counting semaphores: a subset of Resource
    Limit,        \* the permits of every semaphore (1 <= Limit <= PermitsMax)
    Modes,        \* the modes clients ask for: a subset of AllModes
    TTL,          \* a session's lease, in ticks
    Drift,        \* ticks a client's clock may lose against the node's per lease
    Margin,       \* ticks early a client gives its lease up, to cover the drift
    MaxRequests,  \* acquires and conversions in a whole run (keeps it finite)
    MaxCrashes,   \* node crashes in a whole run
    MaxFailovers, \* changes of leader in a whole run (Failover)
    MaxPauses,    \* ticks clients may spend suspended, clocks stopped, in a run
    Bug           \* "none", or the planted bug to enable (see Bugs below)

\* The planted bugs. Each one replaces one definition by a wrong one, and one
\* property must then fail: README.md lists which, and what TLC printed.
Bugs == {"none", "NewIgnoreConversions", "Overtake", "ExpiryKeepsValue",
         "UpConvertKeepsToken", "ConvertIgnoresHolders", "NoDeadlockCheck",
         "TokenMaxFromLocks", "AckBeforeSync", "NoDriftMargin", "ExpiryKeepsWaiters",
         "DeadlockAheadEdges", "ConversionOvertakes", "FailoverNoGrace",
         "SemaphoreOverLimit"}

ASSUME /\ TTL \in Nat /\ Drift \in Nat /\ Margin \in Nat /\ TTL > Margin
       /\ MaxRequests \in Nat /\ MaxCrashes \in Nat /\ MaxPauses \in Nat
       /\ MaxFailovers \in Nat
       /\ Semaphores \subseteq Resource /\ Limit \in Nat \ {0}
       /\ Bug \in Bugs

-----------------------------------------------------------------------------
(* Modes (spec/mode.go).                                                   *)

AllModes == {"NL", "CR", "CW", "PR", "PW", "EX"}
ASSUME Modes \subseteq AllModes

NoLock == "-"            \* no mode held, or no request queued
NoResource == "-"        \* the resource field of a message that names none

\* The compatibility matrix (spec/mode.go), as the pairs that conflict.
Conflicts == {<<"CR", "EX">>, <<"CW", "PR">>, <<"CW", "PW">>, <<"CW", "EX">>,
              <<"PR", "PW">>, <<"PR", "EX">>, <<"PW", "PW">>, <<"PW", "EX">>,
              <<"EX", "EX">>}
Compatible(a, b) == <<a, b>> \notin Conflicts /\ <<b, a>> \notin Conflicts

\* a conflicts with nothing b does not conflict with: going from b to a is a
\* down-conversion, always grantable in place (spec.Weaker).
Weaker(a, b) == \A x \in AllModes : Compatible(b, x) => Compatible(a, x)

\* PW and EX holders may write the value block (Mode.WritesValue).
WritesValue(m) == m \in {"PW", "EX"}

-----------------------------------------------------------------------------
(* Counting semaphores (spec/doc.go, "Semaphore"). A semaphore is a        *)
(* resource of Limit permits; each holder holds 1 to Limit of them, in PR, *)
(* with its own token, and gives them all back on release or expiry. A     *)
(* request is granted when its permits fit in what the holders leave of    *)
(* the limit, in the strict FIFO order of a lock (a large request at the   *)
(* head holds back smaller ones behind it, so it is never starved).        *)
(* Permits are never converted, and PR never writes the value block. In    *)
(* the Go model a resource is a semaphore from the acquire that creates it *)
(* until it is dropped; here each resource is one or the other for a      *)
(* whole run, which is the same to clients that always ask a resource in   *)
(* the same way (the Go model refuses the others: InvalidArgument).        *)

\* What a client asks for on r, as <<mode, permits>>: a mode of Modes and no
\* permits on a lock resource, 1 to Limit permits in PR on a semaphore.
Asks(r) == IF r \in Semaphores THEN {"PR"} \X (1..Limit) ELSE Modes \X {0}
LockModes(r) == IF r \in Semaphores THEN {"PR"} ELSE Modes

RECURSIVE SumOf(_, _)
SumOf(f, S) == IF S = {} THEN 0 ELSE LET x == CHOOSE x \in S : TRUE IN f[x] + SumOf(f, S \ {x})

\* The permits granted on r when the granted modes are h and the permits p.
GrantedPermits(h, p, r) ==
    SumOf([s \in Session |-> IF h[r][s] # NoLock THEN p[r][s] ELSE 0], Session)

\* Two locks on r, in modes a and b with permits pa and pb, cannot be
\* granted together (spec/graph.go, conflicts): on a semaphore when their
\* permits add up past the limit, on a lock resource when the modes conflict.
Conflict(r, a, pa, b, pb) == IF r \in Semaphores THEN pa + pb > Limit ELSE ~Compatible(a, b)

\* The lock t holds on r (if any) conflicts with a request of m and k permits.
HolderConflicts(h, p, r, t, m, k) == h[r][t] # NoLock /\ Conflict(r, h[r][t], p[r][t], m, k)

-----------------------------------------------------------------------------
(* Sequences used as queues.                                               *)

Range(q) == {q[i] : i \in DOMAIN q}
Remove(q, s) == SelectSeq(q, LAMBDA x : x # s)
\* The sessions queued ahead of s in q (all of q if s is not in it).
Ahead(q, s) == IF s \in Range(q)
               THEN {q[i] : i \in 1..((CHOOSE j \in DOMAIN q : q[j] = s) - 1)}
               ELSE Range(q)
MaxOf(S) == CHOOSE x \in S : \A y \in S : y <= x

-----------------------------------------------------------------------------
VARIABLES
    \* ---- the node's memory: lost by a crash ----
    up,         \* the node is running
    status,     \* status[s]: "none" (not open), "alive" or "expired"
    leaseLeft,  \* leaseLeft[s]: ticks before the node expires s (0 if not alive)
    held,       \* held[r][s]: the mode s holds on r, or NoLock
    want,       \* want[r][s]: the mode s's queued request on r asks for, or NoLock
    convQ,      \* convQ[r]: holders of r waiting to convert up, oldest first
    waitQ,      \* waitQ[r]: sessions with a new request queued on r, oldest first
    token,      \* token[r][s]: the fencing token of s's lock on r (0: none)
    permits,    \* permits[r][s]: the permits s holds or waits for on semaphore r (0: none)
    valid,      \* valid[r]: r's value block is marked valid
    tokenMax,   \* the highest token handed out
    dirty,      \* a batch was applied in memory and is not yet on disk
    outbox,     \* the replies of that batch, sent once it is on disk
    \* ---- the node's disk: survives a crash ----
    disk,       \* a record of the durable variables, as of the last write
    \* ---- the clients ----
    cLive,      \* cLive[c]: c believes its session (lease) is alive
    cElapsed,   \* cElapsed[c]: ticks of c's clock since its lease was last renewed
    cLag,       \* cLag[c]: ticks c's clock has lost against the node's since then
    cHeld,      \* cHeld[c][r]: the mode c believes it holds on r, or NoLock
    cToken,     \* cToken[c][r]: the token c was given with it
    cPermits,   \* cPermits[c][r]: the permits c believes it holds on semaphore r
    \* ---- history and bounds: read by the properties, never by the actions ----
    lastToken,  \* lastToken[r]: the highest token any client was given for r
    lost,       \* lost[r]: a PW/EX holder of r expired since r's block was written
    budget,     \* acquires and conversions left in this run
    crashes,    \* crashes so far
    failovers,  \* changes of leader so far
    pauses,     \* ticks of suspension so far
    falseDeadlock \* some request was refused as a deadlock that the oracle finds none in

nodeVars == <<up, status, leaseLeft, held, want, convQ, waitQ, token, permits, valid, tokenMax,
              dirty, outbox, disk>>
lockVars == <<held, want, convQ, waitQ, token, permits, valid, lost>>
clientVars == <<cLive, cElapsed, cLag, cHeld, cToken, cPermits, lastToken>>
vars == <<nodeVars, clientVars, lost, budget, crashes, failovers, pauses, falseDeadlock>>

\* What a write puts on disk: everything but the leases, which a restart
\* renews anyway, and the ghost lost, which rolls back with the state.
DiskImage == [status |-> status, held |-> held, want |-> want, convQ |-> convQ,
              waitQ |-> waitQ, token |-> token, permits |-> permits, valid |-> valid,
              tokenMax |-> tokenMax, lost |-> lost]

\* A reply that changes what its client believes: a lock (mode NoLock for a
\* release) with its token and its permits (0 but on a semaphore), or an
\* opened session (res NoResource).
Messages == [to : Session, res : Resource \cup {NoResource},
             mode : AllModes \cup {NoLock}, tok : Nat, per : Nat]
Msg(c, r, m, t, k) == [to |-> c, res |-> r, mode |-> m, tok |-> t, per |-> k]

NoLocks == [r \in Resource |-> NoLock]
NoTokens == [r \in Resource |-> 0]
NoPermits == [r \in Resource |-> 0]

-----------------------------------------------------------------------------
(* Derived state.                                                          *)

\* A lease is due when its time is up: the node must expire it before
\* anything else happens (the Go model fires due timers first).
LeaseDue == \E s \in Session : status[s] = "alive" /\ leaseLeft[s] = 0

\* The node takes a new input only when it is up, its last batch is on disk,
\* and no lease is due.
NodeReady == up /\ ~dirty /\ ~LeaseDue

\* Mode m fits every mode granted on r, except self's own.
Fits(h, r, m, self) == \A t \in Session \ {self} : Compatible(h[r][t], m)

\* No lock and no request: the resource is dropped, and its value block.
Unused(h, w, r) == \A s \in Session : h[r][s] = NoLock /\ w[r][s] = NoLock

\* The wait-for graph (spec/graph.go): s waits for t when a queued request
\* of s cannot be granted until t acts. A resource serves its queued
\* requests in one order, the conversion queue then the wait queue, and a
\* request is granted only after every request ahead of it and together
\* with those ahead that are compatible with it. So s's request at place i
\* of that order waits for a holder t whose granted lock conflicts with a
\* request at or ahead of i (not t's own), and for a t queued ahead of it
\* whose wanted lock conflicts with a request between t's place and i.
\* On a semaphore a conflict is a pair whose permits add up past the limit
\* (Conflict): a waiter held up only by the sum of several holders waits
\* for any of them, not for each, and gets no edge to them; so an edge is
\* a real wait, and every cycle a real deadlock.
Serving(cq, wq, r) == cq[r] \o wq[r]
WaitsForOn(h, w, p, q, r, s, t) ==
    \E i \in DOMAIN q :
        /\ q[i] = s
        /\ \/ \E j \in 1..i : q[j] # t /\ HolderConflicts(h, p, r, t, w[r][q[j]], p[r][q[j]])
           \/ \E j \in 1..(i - 1) : q[j] = t /\ \E k \in (j + 1)..i :
                 Conflict(r, w[r][t], p[r][t], w[r][q[k]], p[r][q[k]])
\* The rule before it was found wrong (planted bug DeadlockAheadEdges): a new
\* request waits for every conversion and every request ahead of it.
WaitsForBefore(h, w, p, cq, wq, r, s, t) ==
    \/ /\ s \in Range(cq[r]) /\ t # s /\ HolderConflicts(h, p, r, t, w[r][s], p[r][s])
    \/ /\ s \in Range(wq[r])
       /\ \/ HolderConflicts(h, p, r, t, w[r][s], p[r][s])
          \/ t \in Range(cq[r])
          \/ t \in Ahead(wq[r], s)
WaitsFor(h, w, p, cq, wq, s, t) ==
    \E r \in Resource :
        IF Bug = "DeadlockAheadEdges" THEN WaitsForBefore(h, w, p, cq, wq, r, s, t)
        ELSE WaitsForOn(h, w, p, Serving(cq, wq, r), r, s, t)
Edges(h, w, p, cq, wq) ==
    {e \in Session \X Session : WaitsFor(h, w, p, cq, wq, e[1], e[2])}

RECURSIVE Reach(_, _, _)
\* The sessions reachable from the set from in at most n steps along E.
Reach(E, from, n) ==
    IF n = 0 THEN from
    ELSE Reach(E, from \cup {e[2] : e \in {x \in E : x[1] \in from}}, n - 1)
OnCycle(E, s) == s \in Reach(E, {e[2] : e \in {x \in E : x[1] = s}}, Cardinality(Session))

\* The deadlock oracle (spec/stuck.go), which does not use the graph: a
\* session with nothing queued is free and lets go of all its locks; then
\* the head of each conversion queue is granted if it fits, else, with no
\* conversion queued, the head of the wait queue; and again, until nothing
\* changes. A request still queued then can never be granted: stuck.
\* On a semaphore the oracle counts permits exactly (the sum of the
\* holders' and the request's must not pass the limit), unless pairwise:
\* then a request fits once no holder it conflicts with is left. The graph
\* does not see a waiter held up only by the sum of several holders, so
\* the invariant NoDeadlock can promise only the pairwise reading (a wait
\* timeout ends the rest); a Deadlock refusal is judged exactly.
OracleRound(st, pairwise) ==
    LET free == {s \in Session : \A r \in Resource : st.w[r][s] = NoLock}
        h1 == [r \in Resource |-> [s \in Session |-> IF s \in free THEN NoLock ELSE st.h[r][s]]]
        fits(r, m, self) ==
            /\ \A t \in Session \ {self} : Compatible(h1[r][t], m)
            /\ r \in Semaphores =>
                 IF pairwise
                 THEN \A t \in Session \ {self} : ~HolderConflicts(h1, st.p, r, t, m, st.p[r][self])
                 ELSE GrantedPermits(h1, st.p, r) + st.p[r][self] <= Limit
        convOK == [r \in Resource |->
                     st.cq[r] # <<>> /\ fits(r, st.w[r][Head(st.cq[r])], Head(st.cq[r]))]
        waitOK == [r \in Resource |->
                     st.cq[r] = <<>> /\ st.wq[r] # <<>> /\ fits(r, st.w[r][Head(st.wq[r])], Head(st.wq[r]))]
        grantee == [r \in Resource |-> IF convOK[r] THEN Head(st.cq[r])
                                       ELSE IF waitOK[r] THEN Head(st.wq[r]) ELSE NoLock]
    IN [h |-> [r \in Resource |-> IF grantee[r] = NoLock THEN h1[r]
                                   ELSE [h1[r] EXCEPT ![grantee[r]] = st.w[r][grantee[r]]]],
        w |-> [r \in Resource |-> IF grantee[r] = NoLock THEN st.w[r]
                                   ELSE [st.w[r] EXCEPT ![grantee[r]] = NoLock]],
        p |-> st.p,
        cq |-> [r \in Resource |-> IF convOK[r] THEN Tail(st.cq[r]) ELSE st.cq[r]],
        wq |-> [r \in Resource |-> IF ~convOK[r] /\ waitOK[r] THEN Tail(st.wq[r]) ELSE st.wq[r]]]
RECURSIVE OracleFix(_, _, _)
\* Rounds until nothing changes; each round that changes anything grants a
\* request or releases locks, so n rounds are always enough.
OracleFix(st, pairwise, n) == LET next == OracleRound(st, pairwise)
                              IN IF n = 0 \/ next = st THEN st ELSE OracleFix(next, pairwise, n - 1)
Deadlocked(h, w, p, cq, wq, pairwise) ==
    LET f == OracleFix([h |-> h, w |-> w, p |-> p, cq |-> cq, wq |-> wq], pairwise,
                       2 * Cardinality(Session) * Cardinality(Resource) + 2)
    IN \E r \in Resource : f.cq[r] # <<>> \/ f.wq[r] # <<>>

\* A Deadlock refusal: nothing changes but the request budget, and the
\* ghost notes whether the oracle, counting permits exactly, finds a
\* deadlock in the state where the request had been let through (h, w, p,
\* cq, wq) instead.
RefuseDeadlock(h, w, p, cq, wq) ==
    /\ falseDeadlock' = (falseDeadlock \/ ~Deadlocked(h, w, p, cq, wq, FALSE))
    /\ UNCHANGED <<held, want, convQ, waitQ, token, permits, valid, lost, tokenMax, dirty, outbox, clientVars>>

-----------------------------------------------------------------------------
(* The planted bugs, as alternative definitions selected by Bug.            *)

\* A semaphore's request of k permits fits when they fit in what the
\* holders leave of the limit (Model.fits); a lock resource's requests have
\* no permits. With the bug SemaphoreOverLimit, one permit too many fits.
PermitsFit(r, k) ==
    r \in Semaphores =>
        GrantedPermits(held, permits, r) + k <= Limit + (IF Bug = "SemaphoreOverLimit" THEN 1 ELSE 0)

\* A new request may be granted at once only when nothing is queued
\* (conversions first, then strict FIFO) and it fits: its mode, and on a
\* semaphore its k permits.
GrantableNow(r, m, k) ==
    /\ convQ[r] = <<>> \/ Bug = "NewIgnoreConversions"
    /\ waitQ[r] = <<>> \/ Bug = "Overtake"
    /\ Fits(held, r, m, NoLock)
    /\ PermitsFit(r, k)

\* The head of the wait queue is served only when no conversion waits.
WaitersServed(r) == convQ[r] = <<>> \/ Bug = "NewIgnoreConversions"

\* An up-conversion may be granted in place when m fits every other granted mode.
UpFits(r, m, c) == Fits(held, r, m, c) \/ Bug = "ConvertIgnoresHolders"

\* Queueing would close a wait-for cycle: refuse it with Deadlock.
QueueDeadlocks(h, w, p, cq, wq, s) ==
    Bug # "NoDeadlockCheck" /\ OnCycle(Edges(h, w, p, cq, wq), s)

\* The token an up-conversion in place gets.
UpToken(r, s) == IF Bug = "UpConvertKeepsToken" THEN token[r][s] ELSE tokenMax + 1

\* What the expiry of a holder in mode m does to the block's validity.
ValidAfterExpiry(r, m) == IF WritesValue(m) /\ Bug # "ExpiryKeepsValue" THEN FALSE ELSE valid[r]

\* The token counter a restart starts from.
RecoveredTokenMax ==
    IF Bug = "TokenMaxFromLocks"
    THEN MaxOf({0} \cup {token[r][s] : r \in Resource, s \in Session})
    ELSE tokenMax

\* Whether an expiring session's queued new request on r leaves the queue.
WaiterEnds(r, s) == s \in Range(waitQ[r]) => Bug # "ExpiryKeepsWaiters"

\* A client gives its lease up this many ticks (by its clock) after renewing.
LeaseEnd == IF Bug = "NoDriftMargin" THEN TTL ELSE TTL - Margin

-----------------------------------------------------------------------------
(* Replies and what clients learn from them.                               *)

\* Deliver(msgs): each client that still believes in its session takes in
\* the replies addressed to it.
Deliver(msgs) ==
    LET news(c, r) == {m \in msgs : m.to = c /\ m.res = r}
        opened(c) == news(c, NoResource) # {} /\ ~cLive[c]
        told(c, r) == cLive[c] /\ news(c, r) # {}
        the(c, r) == CHOOSE m \in news(c, r) : TRUE
    IN /\ cLive' = [c \in Session |-> cLive[c] \/ opened(c)]
       /\ cElapsed' = [c \in Session |-> IF opened(c) THEN 0 ELSE cElapsed[c]]
       /\ cLag' = [c \in Session |-> IF opened(c) THEN 0 ELSE cLag[c]]
       /\ cHeld' = [c \in Session |-> [r \in Resource |->
                        IF told(c, r) THEN the(c, r).mode ELSE cHeld[c][r]]]
       /\ cToken' = [c \in Session |-> [r \in Resource |->
                        IF told(c, r) THEN the(c, r).tok ELSE cToken[c][r]]]
       /\ cPermits' = [c \in Session |-> [r \in Resource |->
                        IF told(c, r) THEN the(c, r).per ELSE cPermits[c][r]]]
       /\ lastToken' = [r \in Resource |->
                        MaxOf({lastToken[r]} \cup {m.tok : m \in {x \in msgs : x.res = r}})]

\* Tell(msgs): the replies of this step go out with its batch, once the
\* batch is on disk (Persist). The bug AckBeforeSync sends them at once.
Tell(msgs) ==
    IF Bug = "AckBeforeSync"
    THEN Deliver(msgs) /\ UNCHANGED outbox
    ELSE outbox' = outbox \cup msgs /\ UNCHANGED clientVars

\* Sets the lock tables, with p the permits. A session left with no lock
\* and no request on a semaphore has none of its permits. A resource left
\* with no lock and no request is dropped with its value block: a later
\* one starts valid (and nothing lost).
SetLocksPermits(h, w, cq, wq, tk, p, v, l) ==
    /\ held' = h /\ want' = w /\ convQ' = cq /\ waitQ' = wq /\ token' = tk
    /\ permits' = [r \in Resource |-> [s \in Session |->
                      IF h[r][s] = NoLock /\ w[r][s] = NoLock THEN 0 ELSE p[r][s]]]
    /\ valid' = [r \in Resource |-> IF Unused(h, w, r) THEN TRUE ELSE v[r]]
    /\ lost' = [r \in Resource |-> IF Unused(h, w, r) THEN FALSE ELSE l[r]]
\* The same, when no request asks for new permits.
SetLocks(h, w, cq, wq, tk, v, l) == SetLocksPermits(h, w, cq, wq, tk, permits, v, l)

-----------------------------------------------------------------------------
(* Initial state.                                                          *)

Init ==
    /\ up = TRUE
    /\ status = [s \in Session |-> "none"]
    /\ leaseLeft = [s \in Session |-> 0]
    /\ held = [r \in Resource |-> [s \in Session |-> NoLock]]
    /\ want = [r \in Resource |-> [s \in Session |-> NoLock]]
    /\ convQ = [r \in Resource |-> <<>>]
    /\ waitQ = [r \in Resource |-> <<>>]
    /\ token = [r \in Resource |-> [s \in Session |-> 0]]
    /\ permits = [r \in Resource |-> [s \in Session |-> 0]]
    /\ valid = [r \in Resource |-> TRUE]
    /\ tokenMax = 0
    /\ dirty = FALSE
    /\ outbox = {}
    /\ lost = [r \in Resource |-> FALSE]
    /\ disk = DiskImage
    /\ cLive = [c \in Session |-> FALSE]
    /\ cElapsed = [c \in Session |-> 0]
    /\ cLag = [c \in Session |-> 0]
    /\ cHeld = [c \in Session |-> NoLocks]
    /\ cToken = [c \in Session |-> NoTokens]
    /\ cPermits = [c \in Session |-> NoPermits]
    /\ lastToken = [r \in Resource |-> 0]
    /\ budget = MaxRequests
    /\ crashes = 0
    /\ failovers = 0
    /\ pauses = 0
    /\ falseDeadlock = FALSE

-----------------------------------------------------------------------------
(* Client requests. Each is one input to the node, applied in memory as    *)
(* one batch (dirty) whose replies wait in the outbox until Persist. The   *)
(* clients are well behaved: they ask only for what makes sense given what *)
(* they hold (the Go model also answers the requests that do not).         *)

\* OpenSession(c): Model.open. The lease runs from now.
OpenSession(c) ==
    /\ NodeReady /\ status[c] = "none" /\ ~cLive[c]
    /\ status' = [status EXCEPT ![c] = "alive"]
    /\ leaseLeft' = [leaseLeft EXCEPT ![c] = TTL]
    /\ dirty' = TRUE
    /\ Tell({Msg(c, NoResource, NoLock, 0, 0)})
    /\ UNCHANGED <<up, lockVars, tokenMax, disk, budget, crashes, failovers, pauses, falseDeadlock>>

\* KeepAlive(c): renews the lease; it changes nothing durable, so its reply
\* needs no write. The client counts its new lease from the moment it sent
\* the keepalive (here, the same instant). If the node has ended the session
\* the reply says so, and the client knows it holds nothing.
KeepAlive(c) ==
    /\ NodeReady /\ cLive[c]
    /\ IF status[c] = "alive"
       THEN /\ leaseLeft' = [leaseLeft EXCEPT ![c] = TTL]
            /\ cElapsed' = [cElapsed EXCEPT ![c] = 0]
            /\ cLag' = [cLag EXCEPT ![c] = 0]
            /\ UNCHANGED <<cLive, cHeld, cToken, cPermits>>
       ELSE /\ cLive' = [cLive EXCEPT ![c] = FALSE]
            /\ cHeld' = [cHeld EXCEPT ![c] = NoLocks]
            /\ cToken' = [cToken EXCEPT ![c] = NoTokens]
            /\ cPermits' = [cPermits EXCEPT ![c] = NoPermits]
            /\ cElapsed' = [cElapsed EXCEPT ![c] = 0]
            /\ cLag' = [cLag EXCEPT ![c] = 0]
            /\ UNCHANGED leaseLeft
    /\ UNCHANGED <<up, status, lockVars, tokenMax, dirty, outbox, disk, lastToken,
                   budget, crashes, failovers, pauses, falseDeadlock>>

\* Conditions shared by the lock requests of client c.
Requesting(c) == NodeReady /\ cLive[c] /\ status[c] = "alive"

\* Acquire(c, r, m, k): Model.acquire, of mode m and k permits (0 on a
\* lock resource; on a semaphore m is PR and k is 1 to Limit: Asks(r)).
\* Granted at once if nothing is queued and it fits every granted lock (and
\* on a semaphore its permits fit in what the holders leave of the limit);
\* otherwise queued, unless queueing would close a wait-for cycle (refused
\* with Deadlock: nothing changes).
Acquire(c, r, m, k) ==
    /\ Requesting(c) /\ budget > 0
    /\ held[r][c] = NoLock /\ want[r][c] = NoLock
    /\ budget' = budget - 1
    /\ LET p == [permits EXCEPT ![r][c] = k]
       IN
       IF GrantableNow(r, m, k)
       THEN /\ SetLocksPermits([held EXCEPT ![r][c] = m], want, convQ, waitQ,
                               [token EXCEPT ![r][c] = tokenMax + 1], p, valid, lost)
            /\ tokenMax' = tokenMax + 1
            /\ dirty' = TRUE
            /\ Tell({Msg(c, r, m, tokenMax + 1, k)})
            /\ UNCHANGED falseDeadlock
       ELSE LET w == [want EXCEPT ![r][c] = m]
                wq == [waitQ EXCEPT ![r] = Append(@, c)]
            IN IF QueueDeadlocks(held, w, p, convQ, wq, c)
               THEN RefuseDeadlock(held, w, p, convQ, wq)
               ELSE /\ SetLocksPermits(held, w, convQ, wq, token, p, valid, lost)
                    /\ dirty' = TRUE
                    /\ UNCHANGED <<tokenMax, outbox, clientVars, falseDeadlock>>
    /\ UNCHANGED <<up, status, leaseLeft, disk, crashes, failovers, pauses>>

\* Convert(c, r, m): Model.convert. Down: in place, same token; a PW/EX
\* holder writes its value block on the way down. Up (or sideways): in
\* place with a new token if m fits every other granted mode (overtaking
\* queued conversions, as the DLM does) and the grant closes no cycle;
\* otherwise queued in the conversion queue, unless that deadlocks.
\* Permits are never converted (the Go model refuses: InvalidArgument).
Convert(c, r, m) ==
    /\ Requesting(c) /\ budget > 0 /\ r \notin Semaphores
    /\ held[r][c] # NoLock /\ want[r][c] = NoLock /\ m # held[r][c]
    /\ budget' = budget - 1
    /\ LET from == held[r][c]
           h == [held EXCEPT ![r][c] = m]
       IN
       IF Weaker(m, from)
       THEN /\ LET writes == WritesValue(from)
               IN SetLocks(h, want, convQ, waitQ, token,
                           [valid EXCEPT ![r] = @ \/ writes],
                           [lost EXCEPT ![r] = @ /\ ~writes])
            /\ dirty' = TRUE
            /\ Tell({Msg(c, r, m, token[r][c], 0)})
            /\ UNCHANGED <<tokenMax, falseDeadlock>>
       ELSE IF UpFits(r, m, c)
       THEN IF OnCycle(Edges(h, want, permits, convQ, waitQ), c)
            THEN RefuseDeadlock(h, want, permits, convQ, waitQ)
            ELSE /\ SetLocks(h, want, convQ, waitQ,
                             [token EXCEPT ![r][c] = UpToken(r, c)], valid, lost)
                 /\ tokenMax' = IF Bug = "UpConvertKeepsToken" THEN tokenMax ELSE tokenMax + 1
                 /\ dirty' = TRUE
                 /\ Tell({Msg(c, r, m, UpToken(r, c), 0)})
                 /\ UNCHANGED falseDeadlock
       ELSE LET w == [want EXCEPT ![r][c] = m]
                cq == [convQ EXCEPT ![r] = Append(@, c)]
            IN IF OnCycle(Edges(held, w, permits, cq, waitQ), c)
               THEN RefuseDeadlock(held, w, permits, cq, waitQ)
               ELSE /\ SetLocks(held, w, cq, waitQ, token, valid, lost)
                    /\ dirty' = TRUE
                    /\ UNCHANGED <<tokenMax, outbox, clientVars, falseDeadlock>>
    /\ UNCHANGED <<up, status, leaseLeft, disk, crashes, failovers, pauses>>

\* Release(c, r): Model.release. Cancels a queued conversion of the lock;
\* a PW/EX holder writes its value block; a semaphore's holder gives its
\* permits back.
Release(c, r) ==
    /\ Requesting(c) /\ held[r][c] # NoLock
    /\ LET writes == WritesValue(held[r][c])
       IN SetLocks([held EXCEPT ![r][c] = NoLock], [want EXCEPT ![r][c] = NoLock],
                   [convQ EXCEPT ![r] = Remove(@, c)], waitQ,
                   [token EXCEPT ![r][c] = 0],
                   [valid EXCEPT ![r] = @ \/ writes], [lost EXCEPT ![r] = @ /\ ~writes])
    /\ dirty' = TRUE
    /\ Tell({Msg(c, r, NoLock, 0, 0)})
    /\ UNCHANGED <<up, status, leaseLeft, tokenMax, disk, budget, crashes, failovers, pauses, falseDeadlock>>

\* Ends s's queued request on r (Cancelled or Timeout): a new request goes
\* away, a conversion leaves the lock in its granted mode.
Unqueue(r, s) ==
    /\ want[r][s] # NoLock
    /\ SetLocks(held, [want EXCEPT ![r][s] = NoLock], [convQ EXCEPT ![r] = Remove(@, s)],
                [waitQ EXCEPT ![r] = Remove(@, s)], token, valid, lost)
    /\ dirty' = TRUE
    /\ UNCHANGED <<up, status, leaseLeft, tokenMax, outbox, disk, clientVars,
                   budget, crashes, failovers, pauses, falseDeadlock>>

\* Cancel(c, r): Model.cancel.
Cancel(c, r) == Requesting(c) /\ Unqueue(r, c)

-----------------------------------------------------------------------------
(* What the node does on its own.                                          *)

\* WaitTimeout(r, s): a queued request's wait timeout runs out (Model.advance,
\* timerTimeout). Timeouts are not timed here: any moment is possible.
WaitTimeout(r, s) == NodeReady /\ Unqueue(r, s)

\* Expire(s): s's lease ran out (Model.endSession). Its requests end, its
\* locks go (a semaphore's permits with them); a PW/EX holder's value block
\* is marked invalid, since writes it made may never have reached the block.
Expire(s) ==
    /\ up /\ ~dirty /\ status[s] = "alive" /\ leaseLeft[s] = 0
    /\ status' = [status EXCEPT ![s] = "expired"]
    /\ LET h == [r \in Resource |-> [held[r] EXCEPT ![s] = NoLock]]
           w == [r \in Resource |-> IF WaiterEnds(r, s) THEN [want[r] EXCEPT ![s] = NoLock]
                                                        ELSE want[r]]
       IN SetLocks(h, w,
                   [r \in Resource |-> Remove(convQ[r], s)],
                   [r \in Resource |-> IF WaiterEnds(r, s) THEN Remove(waitQ[r], s) ELSE waitQ[r]],
                   [r \in Resource |-> [token[r] EXCEPT ![s] = 0]],
                   [r \in Resource |-> ValidAfterExpiry(r, held[r][s])],
                   [r \in Resource |-> lost[r] \/ WritesValue(held[r][s])])
    /\ dirty' = TRUE
    /\ UNCHANGED <<up, leaseLeft, tokenMax, outbox, disk, clientVars, budget, crashes, failovers, pauses, falseDeadlock>>

\* The queued conversion Model.settle grants next: the head of the
\* conversion queue, if its mode fits every other granted mode (queued
\* conversions never overtake one another). With the planted bug
\* ConversionOvertakes, the first in queue order that fits.
GrantableConversions(r) ==
    {i \in DOMAIN convQ[r] : /\ i = 1 \/ Bug = "ConversionOvertakes"
                             /\ Fits(held, r, want[r][convQ[r][i]], convQ[r][i])}

\* The head of r's wait queue can be granted: no conversion waits, and its
\* mode fits every granted mode (on a semaphore, its permits fit).
WaiterGrantable(r) ==
    /\ waitQ[r] # <<>> /\ WaitersServed(r)
    /\ Fits(held, r, want[r][Head(waitQ[r])], NoLock)
    /\ PermitsFit(r, permits[r][Head(waitQ[r])])

\* GrantConversion(r): Model.settle, first loop. Granting the head adds no
\* wait-for edge (what it waited for, the requests behind it already did),
\* so it needs no deadlock check.
GrantConversion(r) ==
    /\ up /\ GrantableConversions(r) # {}
    /\ LET s == convQ[r][CHOOSE i \in GrantableConversions(r) :
                             \A j \in GrantableConversions(r) : i <= j]
       IN /\ SetLocks([held EXCEPT ![r][s] = want[r][s]], [want EXCEPT ![r][s] = NoLock],
                      [convQ EXCEPT ![r] = Remove(@, s)], waitQ,
                      [token EXCEPT ![r][s] = tokenMax + 1], valid, lost)
          /\ tokenMax' = tokenMax + 1
          /\ Tell({Msg(s, r, want[r][s], tokenMax + 1, 0)})
    /\ dirty' = TRUE
    /\ UNCHANGED <<up, status, leaseLeft, disk, budget, crashes, failovers, pauses, falseDeadlock>>

\* GrantWaiter(r): Model.settle, second loop: the head of the wait queue,
\* once no conversion waits, if it fits (Model.fits): its mode every
\* granted mode, and on a semaphore its permits what the holders leave.
GrantWaiter(r) ==
    /\ up /\ WaiterGrantable(r)
    /\ LET s == Head(waitQ[r])
       IN /\ SetLocks([held EXCEPT ![r][s] = want[r][s]], [want EXCEPT ![r][s] = NoLock],
                      convQ, [waitQ EXCEPT ![r] = Tail(@)],
                      [token EXCEPT ![r][s] = tokenMax + 1], valid, lost)
          /\ tokenMax' = tokenMax + 1
          /\ Tell({Msg(s, r, want[r][s], tokenMax + 1, permits[r][s])})
    /\ dirty' = TRUE
    /\ UNCHANGED <<up, status, leaseLeft, disk, budget, crashes, failovers, pauses, falseDeadlock>>

\* Nothing the rules would grant is left queued.
Settled == \A r \in Resource : GrantableConversions(r) = {} /\ ~WaiterGrantable(r)

\* Persist: the batch is written (with Sync) and only then are its replies
\* sent: nothing is acknowledged before it is durable (group commit).
Persist ==
    /\ up /\ dirty /\ Settled
    /\ disk' = DiskImage
    /\ dirty' = FALSE
    /\ outbox' = {}
    /\ Deliver(outbox)
    /\ UNCHANGED <<up, status, leaseLeft, lockVars, tokenMax, budget, crashes, failovers, pauses, falseDeadlock>>

\* Crash: the node stops. Its memory, the unwritten batch and its unsent
\* replies are gone; what is on disk stays.
Crash ==
    /\ up /\ crashes < MaxCrashes
    /\ up' = FALSE
    /\ crashes' = crashes + 1
    /\ status' = disk.status
    /\ leaseLeft' = [s \in Session |-> 0]
    /\ held' = disk.held /\ want' = disk.want /\ convQ' = disk.convQ /\ waitQ' = disk.waitQ
    /\ token' = disk.token /\ permits' = disk.permits
    /\ valid' = disk.valid /\ tokenMax' = disk.tokenMax
    /\ lost' = disk.lost
    /\ dirty' = FALSE
    /\ outbox' = {}
    /\ UNCHANGED <<disk, clientVars, budget, failovers, pauses, falseDeadlock>>

\* Recover: Model.Recover. The node restarts from its disk; it cannot know
\* how long it was down, so every session gets a full lease from now.
Recover ==
    /\ ~up
    /\ up' = TRUE
    /\ leaseLeft' = [s \in Session |-> IF status[s] = "alive" THEN TTL ELSE 0]
    /\ tokenMax' = RecoveredTokenMax
    /\ UNCHANGED <<status, lockVars, dirty, outbox, disk, clientVars, budget, crashes, failovers, pauses, falseDeadlock>>

\* Failover: Model.Failover, a change of leader in a replicated group, in
\* one step. The new leader's state is the log as committed: the node's
\* memory is replaced by its last durable state, as by Crash then Recover,
\* and the new leader cannot know what leases the old one promised, so
\* every live session gets a grace of a full lease (TTL) from now.
FailoverLease(s) ==
    IF disk.status[s] # "alive" THEN 0
    ELSE IF Bug = "FailoverNoGrace" THEN 0 ELSE TTL

Failover ==
    /\ up /\ failovers < MaxFailovers
    /\ failovers' = failovers + 1
    /\ status' = disk.status
    /\ leaseLeft' = [s \in Session |-> FailoverLease(s)]
    /\ held' = disk.held /\ want' = disk.want /\ convQ' = disk.convQ /\ waitQ' = disk.waitQ
    /\ token' = disk.token /\ permits' = disk.permits
    /\ valid' = disk.valid /\ tokenMax' = disk.tokenMax
    /\ lost' = disk.lost
    /\ dirty' = FALSE
    /\ outbox' = {}
    /\ UNCHANGED <<up, disk, clientVars, budget, crashes, pauses, falseDeadlock>>

-----------------------------------------------------------------------------
(* Time.                                                                   *)

\* One tick of true time passes. The node's leases count down (not while it
\* is down: a restart renews them anyway). Each live client's clock moves
\* one tick, except those in still; a client whose clock says its lease is
\* over (LeaseEnd ticks since its last renewal) gives it up: it believes it
\* holds nothing, and stops using the session.
TimePasses(still) ==
    LET e == [c \in Session |-> IF c \in still THEN cElapsed[c] ELSE cElapsed[c] + 1]
        over == {c \in Session : cLive[c] /\ e[c] >= LeaseEnd}
    IN /\ leaseLeft' = IF up
                       THEN [s \in Session |-> IF status[s] = "alive" THEN leaseLeft[s] - 1 ELSE 0]
                       ELSE leaseLeft
       /\ cLive' = [c \in Session |-> cLive[c] /\ c \notin over]
       /\ cElapsed' = [c \in Session |-> IF cLive'[c] THEN e[c] ELSE 0]
       /\ cHeld' = [c \in Session |-> IF c \in over THEN NoLocks ELSE cHeld[c]]
       /\ cToken' = [c \in Session |-> IF c \in over THEN NoTokens ELSE cToken[c]]
       /\ cPermits' = [c \in Session |-> IF c \in over THEN NoPermits ELSE cPermits[c]]

\* Time may pass once the node has written its batch and expired every due
\* lease (timers fire at their instant).
TimeMayPass == up => ~dirty /\ ~LeaseDue

\* Tick: time passes; clients in slow have clocks that lose this tick, each
\* at most Drift ticks per lease: the drift bound.
Tick ==
    /\ TimeMayPass
    /\ \E slow \in SUBSET {c \in Session : cLive[c] /\ cLag[c] < Drift} :
          /\ TimePasses(slow)
          /\ cLag' = [c \in Session |-> IF ~cLive'[c] THEN 0
                                        ELSE IF c \in slow THEN cLag[c] + 1 ELSE cLag[c]]
    /\ UNCHANGED <<up, status, lockVars, tokenMax, dirty, outbox, disk, lastToken,
                   budget, crashes, failovers, pauses, falseDeadlock>>

\* Pause(c): client c's process is suspended for a tick of true time, and
\* its clock with it (a VM suspend, say): this is outside the drift bound.
\* With MaxPauses = 0 it never happens; with MaxPauses > 0, TLC shows that
\* clients' beliefs can then conflict, which is what fencing tokens are for.
Pause(c) ==
    /\ TimeMayPass /\ pauses < MaxPauses /\ cLive[c]
    /\ TimePasses({c})
    /\ cLag' = [x \in Session |-> IF cLive'[x] THEN cLag[x] ELSE 0]
    /\ pauses' = pauses + 1
    /\ UNCHANGED <<up, status, lockVars, tokenMax, dirty, outbox, disk, lastToken,
                   budget, crashes, failovers, falseDeadlock>>

-----------------------------------------------------------------------------
Next ==
    \/ \E c \in Session : OpenSession(c) \/ KeepAlive(c) \/ Pause(c)
    \/ \E c \in Session, r \in Resource :
           \/ Release(c, r) \/ Cancel(c, r)
           \/ \E a \in Asks(r) : Acquire(c, r, a[1], a[2])
           \/ \E m \in Modes : Convert(c, r, m)
    \/ \E r \in Resource :
           \/ GrantConversion(r) \/ GrantWaiter(r)
           \/ \E s \in Session : WaitTimeout(r, s)
    \/ \E s \in Session : Expire(s)
    \/ Persist \/ Crash \/ Recover \/ Failover \/ Tick

Spec == Init /\ [][Next]_vars

\* The node does what is due (writes its batch, grants, expires, restarts),
\* time passes, and holders release in the end: the hypothesis "its
\* blockers all release or expire" of EventuallyServed.
Fairness ==
    /\ WF_vars(Persist) /\ WF_vars(Recover) /\ WF_vars(Tick)
    /\ \A s \in Session : WF_vars(Expire(s))
    /\ \A r \in Resource : WF_vars(GrantConversion(r)) /\ WF_vars(GrantWaiter(r))
    /\ \A c \in Session, r \in Resource : WF_vars(Release(c, r))

LiveSpec == Spec /\ Fairness

-----------------------------------------------------------------------------
(* Properties. README.md explains each for a learner.                      *)

TypeOK ==
    /\ up \in BOOLEAN /\ dirty \in BOOLEAN
    /\ status \in [Session -> {"none", "alive", "expired"}]
    /\ leaseLeft \in [Session -> 0..TTL]
    /\ \A r \in Resource : held[r] \in [Session -> LockModes(r) \cup {NoLock}]
    /\ \A r \in Resource : want[r] \in [Session -> LockModes(r) \cup {NoLock}]
    \* a semaphore's lock or request has 1 to Limit permits, never converting;
    \* a lock resource's have none (spec/invariants.go, checkSemaphore)
    /\ permits \in [Resource -> [Session -> 0..Limit]]
    /\ \A r \in Resource, s \in Session :
          /\ (permits[r][s] # 0) = (r \in Semaphores /\ (held[r][s] # NoLock \/ want[r][s] # NoLock))
          /\ r \in Semaphores => convQ[r] = <<>>
    /\ convQ \in [Resource -> Seq(Session)]
    /\ waitQ \in [Resource -> Seq(Session)]
    /\ token \in [Resource -> [Session -> 0..tokenMax]]
    /\ valid \in [Resource -> BOOLEAN]
    /\ tokenMax \in Nat
    /\ outbox \subseteq Messages
    /\ \A m1, m2 \in outbox : m1.to = m2.to /\ m1.res = m2.res => m1 = m2  \* one per lock and batch
    /\ DOMAIN disk = {"status", "held", "want", "convQ", "waitQ", "token", "permits", "valid",
                      "tokenMax", "lost"}
    /\ cLive \in [Session -> BOOLEAN]
    /\ cElapsed \in [Session -> 0..TTL]
    /\ cLag \in [Session -> 0..Drift]
    /\ \A c \in Session, r \in Resource : cHeld[c][r] \in LockModes(r) \cup {NoLock}
    /\ cToken \in [Session -> [Resource -> Nat]]
    /\ cPermits \in [Session -> [Resource -> 0..Limit]]
    /\ lastToken \in [Resource -> Nat]
    /\ lost \in [Resource -> BOOLEAN]
    /\ budget \in 0..MaxRequests /\ crashes \in 0..MaxCrashes /\ failovers \in 0..MaxFailovers /\ pauses \in 0..MaxPauses
    /\ falseDeadlock \in BOOLEAN

\* Granted modes on a resource are pairwise compatible.
CompatibleGrants ==
    \A r \in Resource, s, t \in Session :
        s # t => Compatible(held[r][s], held[r][t])

\* No new request overtakes an older one or a queued conversion: when a
\* lock is newly granted, no conversion queued before the step, and no
\* request queued ahead of it, is still queued after it. (A crash restores
\* the disk, which grants nothing: it is not a step of the lock service;
\* nor is a failover, which restores it too.)
QueueDisciplineStep ==
    up' /\ failovers' = failovers => \A r \in Resource, s \in Session :
               /\ (held[r][s] = NoLock /\ held'[r][s] # NoLock) =>
                     /\ \A c \in Range(convQ[r]) : c \notin Range(convQ'[r])
                     /\ \A w \in Ahead(waitQ[r], s) : w \notin Range(waitQ'[r])
               \* and a queued conversion is granted only once none is ahead of it
               /\ (s \in Range(convQ[r]) /\ held'[r][s] = want[r][s]) =>
                     \A c \in Ahead(convQ[r], s) : c \notin Range(convQ'[r])
QueueDiscipline == [][QueueDisciplineStep]_vars

\* Every token a client is given with a new lock or an up-conversion is
\* greater than every token any client was given before for that resource,
\* across crashes.
TokensIncreaseStep ==
    \A c \in Session, r \in Resource :
        LET before == cHeld[c][r]
            after == cHeld'[c][r]
        IN (after # NoLock /\ (before = NoLock \/ ~Weaker(after, before)))
               => cToken'[c][r] > lastToken[r]
TokensIncrease == [][TokensIncreaseStep]_vars

\* What a client was told it holds is on disk, unless the session ended.
NoAckLost ==
    \A c \in Session, r \in Resource :
        (cLive[c] /\ cHeld[c][r] # NoLock /\ disk.status[c] = "alive")
            => disk.held[r][c] = cHeld[c][r]

\* No two clients believe at the same instant that they hold conflicting
\* modes on a resource, as long as clocks drift within the bound.
ClientViewExclusion ==
    \A r \in Resource, c, d \in Session :
        (c # d /\ cLive[c] /\ cLive[d]) => Compatible(cHeld[c][r], cHeld[d][r])

\* The permits granted on a semaphore never pass its limit
\* (spec/invariants.go, checkSemaphore).
SemaphoreLimit == \A r \in Semaphores : GrantedPermits(held, permits, r) <= Limit

\* No more permits of a semaphore than its limit are believed held by
\* clients at the same instant, as long as clocks drift within the bound:
\* ClientViewExclusion for semaphores.
ClientViewLimit ==
    \A r \in Semaphores : SumOf([c \in Session |-> IF cLive[c] THEN cPermits[c][r] ELSE 0], Session) <= Limit

\* A value block that a PW/EX holder's expiry may have left stale is
\* marked invalid.
ValueValidity == \A r \in Resource : lost[r] => ~valid[r]

\* The wait-for graph has no cycle: every deadlock is refused.
WaitForAcyclic == LET E == Edges(held, want, permits, convQ, waitQ) IN \A s \in Session : ~OnCycle(E, s)

\* By the oracle, which does not use the graph: no queued request is ever
\* stuck (a semaphore's waiter counted as grantable once no holder it
\* conflicts with is left: the pairwise reading), and every Deadlock
\* refusal refused a request that would have left one stuck, counting
\* permits exactly. (The Go oracle also accepts a refusal that a timed-out
\* sideways conversion, PR<->CW, would justify; no configuration here asks
\* for CW.)
NoDeadlock == ~Deadlocked(held, want, permits, convQ, waitQ, TRUE)
DeadlockRefusalsJustified == ~falseDeadlock

\* Under Fairness, a queued request is eventually granted or refused
\* (deadlock, timeout, cancel, release, expiry): nothing waits forever.
EventuallyServed ==
    \A r \in Resource, s \in Session : (want[r][s] # NoLock) ~> (want[r][s] = NoLock)

=============================================================================
