----------------------------- MODULE MCBouncer -----------------------------
(***************************************************************************)
(* Bouncer with small constants, for TLC. The constants themselves are in  *)
(* MCBouncer.cfg (safety, with symmetry) and MCBouncerLive.cfg (liveness,  *)
(* without: TLC cannot check liveness under symmetry).                     *)
(***************************************************************************)
EXTENDS Bouncer, TLC

\* Clients are interchangeable, and so are resources: a state and its image
\* under any renaming of either have the same futures, so TLC keeps one.
Symmetry == Permutations(Session) \cup Permutations(Resource)
=============================================================================
