package engine

// A lock sits on up to four intrusive lists at once: its resource's granted
// list, one of its resource's queues (conversion or wait), its session's
// list of queued requests, and its session's list of locks. Intrusive links make every insert and removal
// O(1) with no allocation.
type listKind uint8

const (
	grantedList listKind = iota // resource.granted: locks with a granted mode, in grant order
	queueList                   // resource.converting or resource.waiting, FIFO
	pendingList                 // session.pending: the session's queued requests
	sessionList                 // session.locks: every lock of the session
	listKinds
)

type links struct{ prev, next *lock }

type lockList struct {
	head, tail *lock
	n          int
}

func (ls *lockList) pushBack(k listKind, l *lock) {
	ln := &l.links[k]
	assert(ln.prev == nil && ln.next == nil && ls.head != l, "a lock joins a list it is on")
	ln.prev, ln.next = ls.tail, nil
	if ls.tail != nil {
		ls.tail.links[k].next = l
	} else {
		ls.head = l
	}
	ls.tail = l
	ls.n++
}

func (ls *lockList) remove(k listKind, l *lock) {
	ln := &l.links[k]
	assert(ls.n > 0 && (ln.prev != nil || ls.head == l) && (ln.next != nil || ls.tail == l),
		"a lock leaves a list it is not on")
	if ln.prev != nil {
		ln.prev.links[k].next = ln.next
	} else {
		ls.head = ln.next
	}
	if ln.next != nil {
		ln.next.links[k].prev = ln.prev
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
		at = at.links[k].prev
	}
	ln := &l.links[k]
	if at == nil {
		ln.prev, ln.next = nil, ls.head
		if ls.head != nil {
			ls.head.links[k].prev = l
		} else {
			ls.tail = l
		}
		ls.head = l
	} else {
		ln.prev, ln.next = at, at.links[k].next
		if ln.next != nil {
			ln.next.links[k].prev = l
		} else {
			ls.tail = l
		}
		at.links[k].next = l
	}
	ls.n++
}
