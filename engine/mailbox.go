package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Mailbox is the hand-off between callers and the goroutine that owns a
// core: the inputs waiting for it, and its end. Loop embeds one, and so
// does a member of a replicated group (package cluster). The owner takes
// inputs from Inputs, answers each (Submission.Answer) once what it did is
// durable, watches Quit, and calls Finish when it stops; Submit, Enqueue,
// Stop, Done and Err are the callers' side.
type Mailbox struct {
	subs chan *Submission
	quit chan struct{}
	done chan struct{}
	err  error  // why the owner stopped: set on its goroutine, read by others after done
	who  string // "node" or "member", in refusals
}

// Submission is one input waiting for its reply: on reply (Submit), or
// with its tag to to (Enqueue). Neither blocks the owner.
type Submission struct {
	In    spec.Input
	reply chan spec.Result
	tag   uint64
	to    Replies
}

// Answer sends the submission its reply.
func (c *Submission) Answer(r spec.Result) {
	if c.to == nil {
		c.reply <- r
		return
	}
	c.to.Put(Reply{Tag: c.tag, Result: r})
}

// Replies takes the replies to inputs handed to Enqueue. Put is called on
// the owner's goroutine and must never block.
type Replies interface {
	Put(Reply)
}

// Reply is the answer to an input handed to Enqueue, with its tag.
type Reply struct {
	Tag    uint64
	Result spec.Result
}

var (
	// ErrLoopStopped is the error of inputs submitted after Stop.
	ErrLoopStopped = errors.New("engine: loop stopped")
	// ErrQueueFull is Enqueue's error when QueueMax inputs wait already.
	ErrQueueFull = errors.New("engine: the loop's queue is full")
)

// NewMailbox returns a mailbox that holds up to queueMax inputs; who names
// the owner in refusals ("node", "member").
func NewMailbox(queueMax int, who string) *Mailbox {
	return &Mailbox{subs: make(chan *Submission, queueMax), quit: make(chan struct{}), done: make(chan struct{}), who: who}
}

// Submit hands in to the owner and waits for its reply, which comes only
// once what it did is durable. If the owner stopped, the reply is
// Unavailable. If ctx ends first, Submit returns ctx's error; the input may
// still take effect (a retry with the same request id is safe).
func (m *Mailbox) Submit(ctx context.Context, in spec.Input) (spec.Result, error) {
	c := &Submission{In: in, reply: make(chan spec.Result, 1)}
	select {
	case m.subs <- c:
	case <-m.done:
		return m.Unavailable(), nil
	case <-ctx.Done():
		return spec.Result{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r, nil
	case <-m.done:
		select {
		case r := <-c.reply: // answered just before the owner stopped
			return r, nil
		default:
			return m.Unavailable(), nil
		}
	case <-ctx.Done():
		return spec.Result{}, ctx.Err()
	}
}

// Enqueue hands in to the owner without waiting: its reply, with tag, goes
// to replyTo once durable (Unavailable if the owner fails first). Replies
// to the inputs one goroutine enqueues arrive in the order it enqueued
// them. Enqueue fails at once
// with ErrQueueFull when the queue is full, and with the owner's error once
// it has stopped; then no reply comes. An input enqueued as the owner stops
// may get no reply either: callers also watch Done.
func (m *Mailbox) Enqueue(in spec.Input, tag uint64, replyTo Replies) error {
	select {
	case <-m.done:
		return m.StopErr()
	default:
	}
	select {
	case m.subs <- &Submission{In: in, tag: tag, to: replyTo}:
		return nil
	default:
		return ErrQueueFull
	}
}

// Stop asks the owner to stop and waits until it has. It returns why the
// owner had stopped, if it failed before.
func (m *Mailbox) Stop() error {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
	if errors.Is(m.err, ErrLoopStopped) {
		return nil
	}
	return m.err
}

// Done is closed when the owner has stopped, after Stop or a failure.
func (m *Mailbox) Done() <-chan struct{} { return m.done }

// Err says why the owner stopped (nil while it runs, ErrLoopStopped after Stop).
func (m *Mailbox) Err() error {
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

// StopErr is the owner's error, or ErrLoopStopped (the owner's goroutine,
// or after Done).
func (m *Mailbox) StopErr() error {
	if m.err == nil {
		return ErrLoopStopped
	}
	return m.err
}

// Unavailable is the refusal of an input the owner will not take.
func (m *Mailbox) Unavailable() spec.Result {
	return spec.Refuse(spec.Unavailable, fmt.Sprintf("%s: %v", m.who, m.StopErr()))
}

// Inputs delivers the inputs waiting (the owner's goroutine).
func (m *Mailbox) Inputs() <-chan *Submission { return m.subs }

// Quit is closed by Stop (the owner's goroutine watches it).
func (m *Mailbox) Quit() <-chan struct{} { return m.quit }

// Fail records why the owner is stopping (its goroutine, before Finish).
func (m *Mailbox) Fail(err error) {
	if m.err == nil {
		m.err = err
	}
}

// Finish marks the owner stopped (its goroutine, once): Done closes, and
// Err says why (ErrLoopStopped unless Fail said otherwise).
func (m *Mailbox) Finish() {
	if m.err == nil {
		m.err = ErrLoopStopped
	}
	close(m.done)
}

// Drain adds the inputs already waiting to batch, up to max in all.
func (m *Mailbox) Drain(batch []*Submission, max int) []*Submission {
	for len(batch) < max {
		select {
		case c := <-m.subs:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// FailQueued answers every input still queued with Unavailable.
func (m *Mailbox) FailQueued() {
	for {
		select {
		case c := <-m.subs:
			c.Answer(m.Unavailable())
		default:
			return
		}
	}
}

// Call runs f on the owner's goroutine, which serves ch, and waits until it
// ran; it fails if the owner stops first, or if ctx ends before the owner
// took f.
func Call[T any](ctx context.Context, m *Mailbox, ch chan<- func(T), f func(T)) error {
	ran := make(chan struct{})
	g := func(v T) { f(v); close(ran) }
	select {
	case ch <- g:
	case <-m.done:
		return m.StopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-m.done:
		return m.StopErr()
	}
}
