package spec

import "fmt"

// The details that accompany refusals. The model and the engine share them
// so that both say the same thing, word for word.
const (
	DetailUnknownSession  = "session: no such session"
	DetailSessionClosed   = "session: the session was closed"
	DetailSessionExpired  = "session: the session's lease expired"
	DetailAlreadyHeld     = "resource: the session already holds or waits for a lock on it"
	DetailWouldBlock      = "resource: the request would have to wait"
	DetailDeadlockQueue   = "resource: waiting would close a cycle in the wait-for graph"
	DetailDeadlockGrant   = "resource: granting would close a cycle in the wait-for graph"
	DetailNotHeld         = "resource: the session holds no granted lock on it"
	DetailNotQueued       = "resource: the session has no queued request on it"
	DetailConverting      = "resource: a conversion of this lock is already queued"
	DetailValueWrite      = "value: only a PW or EX holder may write the value block, on release or down-conversion"
	DetailTimeout         = "wait_timeout: ran out before the request could be granted"
	DetailCancelled       = "cancelled by the session"
	DetailReleased        = "cancelled: the lock was released"
	DetailClosedCancelled = "cancelled: the session was closed"
	DetailSemaphoreLock   = "resource: it is a lock, not a semaphore (acquire it with a mode, without permits)"
	DetailConvertPermits  = "resource: it is a semaphore; permits are released, never converted"
)

// DetailSemaphore is the detail for a request that does not match the
// semaphore of limit permits the resource is.
func DetailSemaphore(limit uint32) string {
	return fmt.Sprintf("resource: it is a semaphore of %d permits (acquire 1 to %d permits with limit %d, mode PR)", limit, limit, limit)
}

// DetailAcknowledged is the detail for a request id the client already acknowledged.
func DetailAcknowledged(id, acked RequestID) string {
	return fmt.Sprintf("request: id %d was already acknowledged (acked up to %d)", id, acked)
}

// DetailReplies is the detail for a session with too many unacknowledged outcomes.
func DetailReplies(max int) string {
	return fmt.Sprintf("request: the session has RepliesPerSessionMax %d unacknowledged outcomes; acknowledge some", max)
}

// DetailSessions is the detail for opening a session past SessionsMax.
func DetailSessions(max int) string {
	return fmt.Sprintf("session: SessionsMax %d sessions are open", max)
}

// DetailLocksPerSession is the detail for a lock past LocksPerSessionMax.
func DetailLocksPerSession(max int) string {
	return fmt.Sprintf("resource: the session has LocksPerSessionMax %d locks and requests", max)
}

// DetailResources is the detail for a new resource past ResourcesMax.
func DetailResources(max int) string {
	return fmt.Sprintf("resource: ResourcesMax %d resources are in use", max)
}

// DetailWaiters is the detail for queueing past WaitersPerResourceMax.
func DetailWaiters(max int) string {
	return fmt.Sprintf("resource: WaitersPerResourceMax %d requests are already queued on it", max)
}

// DetailRequestReused is the detail for a request id reused by a request
// that asks for something else than the one it first named.
func DetailRequestReused(id RequestID) string {
	return fmt.Sprintf("request: id %d was used by another request (a retry must repeat the operation, resource, mode, options and value)", id)
}
