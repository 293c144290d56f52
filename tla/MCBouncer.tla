----------------------------- MODULE MCBouncer -----------------------------
(***************************************************************************)
(* Bouncer with small constants, for TLC. The constants themselves are in  *)
(* MCBouncer.cfg (safety, with symmetry), MCBouncerLive.cfg (liveness,     *)
(* without: TLC cannot check liveness under symmetry) and the other .cfg   *)
(* files (two resources, failover, semaphores).                            *)
(***************************************************************************)
EXTENDS Bouncer, TLC

\* Clients are interchangeable, and so are resources of one kind: a state
\* and its image under any renaming of either have the same futures, so TLC
\* keeps one. Renaming a semaphore to a lock resource would change the
\* futures, so resources are renamed only when all are of one kind.
Symmetry == Permutations(Session) \cup
            (IF Semaphores \in {{}, Resource} THEN Permutations(Resource) ELSE {})
=============================================================================
