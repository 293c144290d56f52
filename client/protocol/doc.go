// Package protocol is the protocol logic of Bouncer's client: a sans-I/O
// Session, a plain struct with no goroutines, no clock and no network, so
// that the simulator (package sim) drives exactly the code that the
// networked client (package client) wraps.
//
// # What the core does
//
//   - opens its session (retrying the open with the same session id) and
//     keeps it alive with keepalives on a schedule;
//   - numbers every mutating request (request ids count from 1 in each
//     session), resends an unanswered request with the same id after
//     RetryInterval or a reconnect (the node applies an id at most once and
//     answers every retry with the original outcome), polls a queued request
//     every PollInterval (events can be lost), and acknowledges outcomes
//     (spec.Input.Acked) so the node can forget them;
//   - counts the lease conservatively: from the local time at which it
//     handed the last answered keepalive to the transport (its send time,
//     not the time the answer came back), for TTL shrunk by the clock drift
//     bound and less a safety margin; when that runs out, the session and
//     every lock in it are lost;
//   - tracks each lock: Waiting, Held, AtRisk (the lease is about to run
//     out, or the connection is down) and Lost; a lock stops being believed
//     held the moment the application releases it, converts it down or
//     closes the session, before anything is sent.
//
// # The caller's obligations
//
// Every call takes now, the local monotonic time; its rate must stay within
// Config.DriftPPM of the node's clock. In each round, in order:
//
//  1. Feed in what happened since the last round: Reply for each answer to
//     a Send (by its CallID), Event for each event of this session,
//     Connected or Disconnected when the connection changes, and Tick when
//     nothing else happened but NextDeadline came.
//  2. Make the application's calls (Acquire, Convert, Release, Cancel,
//     Close). Each mutating call returns its request id at once; its
//     outcome comes later as an Update.
//  3. Call Sends(now) and hand every Send to the transport at once: the
//     lease is counted from this now, so sending later than now is safe and
//     sending earlier is not. A Send that cannot be sent may be dropped:
//     the core resends it.
//  4. Call Updates and deliver them to the application in order.
//  5. Wait for the next input or for NextDeadline, whichever comes first.
//
// A Session is not safe for concurrent use; the networked client owns it
// from one goroutine. Its outputs are a function of its inputs alone: the
// same calls in the same order give the same Sends and Updates.
//
// # Loss
//
// Lost is terminal: a session whose lease ran out (or that the node says
// expired) is never used again, even if a late keepalive answer arrives,
// because the application was already told its locks were lost. Every
// request still unanswered then ends with an Update whose Unknown is set:
// it may or may not have taken effect. Close a lost session (the core keeps
// sending Close until the node answers) so that the node releases its locks
// without waiting for the TTL, and open a new session to go on.
package protocol
