package engine

// A lock sits on up to four intrusive lists at once: its resource's granted
// list, one of its resource's queues (conversion or wait), its session's
// list of queued requests, and its session's list of locks. Intrusive links make every insert and removal
// O(1) with no allocation.
type listKind uint8

const (
	grantedList listKind = iota // resource.granted: locks with a granted mode, in grant order
	sessionList                 // session.locks: every lock of the session
	queueList                   // resource.converting or resource.waiting, FIFO (links in lock.q)
	pendingList                 // session.pending: the session's queued requests (links in lock.q)
)

type links struct{ prev, next *lock }

type lockList struct {
	head, tail *lock
	n          int
}

func (ls *lockList) pushBack(k listKind, l *lock) {
	ln := l.link(k)
	assert(ln.prev == nil && ln.next == nil && ls.head != l, "a lock joins a list it is on")
	ln.prev, ln.next = ls.tail, nil
	if ls.tail != nil {
		ls.tail.link(k).next = l
	} else {
		ls.head = l
	}
	ls.tail = l
	ls.n++
}

func (ls *lockList) remove(k listKind, l *lock) {
	assert(k < queueList || l.q != nil, "a lock with no queued request leaves a queue")
	ln := l.link(k)
	assert(ls.n > 0 && (ln.prev != nil || ls.head == l) && (ln.next != nil || ls.tail == l),
		"a lock leaves a list it is not on")
	if ln.prev != nil {
		ln.prev.link(k).next = ln.next
	} else {
		ls.head = ln.next
	}
	if ln.next != nil {
		ln.next.link(k).prev = ln.prev
	} else {
		ls.tail = ln.prev
	}
	ln.prev, ln.next = nil, nil
	ls.n--
}

// insertSorted places l by key among locks already sorted by key (used
// only at recovery, where records arrive in key order, not queue order).
func (ls *lockList) insertSorted(k listKind, l *lock, key func(*lock) uint64) {
	at := ls.tail
	for at != nil && key(at) > key(l) {
		at = at.link(k).prev
	}
	ln := l.link(k)
	if at == nil {
		ln.prev, ln.next = nil, ls.head
		if ls.head != nil {
			ls.head.link(k).prev = l
		} else {
			ls.tail = l
		}
		ls.head = l
	} else {
		ln.prev, ln.next = at, at.link(k).next
		if ln.next != nil {
			ln.next.link(k).prev = l
		} else {
			ls.tail = l
		}
		at.link(k).next = l
	}
	ls.n++
}
