package peers

// The correctness run's Redis client: the usual recipe, SET key value NX
// PX ttl with a random value, released by compare-and-delete. Each lock is
// its own lease, so in the history each grant is a session of its own
// whose id is the lock's random value; Redis gives no token.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/redis/go-redis/v9"
)

// redisPoll is how long a client waits before it tries a held lock again.
const redisPoll = 5 * time.Millisecond

type redisFenced struct {
	c   *redis.Client
	rec *Recorder
	ttl time.Duration
	rng *rand.Rand
	// tokens: the Redisson-style variant (redis-fenced), whose grant takes
	// a fencing token from a counter in the same script as the SET.
	tokens bool
}

// acquireWithToken is SET NX PX and, if it took the key, INCR of the
// resource's token counter, in one script: the token, or 0 if the key was
// held.
var acquireWithToken = redis.NewScript(`if redis.call("set", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
	return redis.call("incr", KEYS[2])
end
return 0`)

// redisLock is a granted lock: its value (the history's session) and when
// the SET that took it was sent (the key lives no longer than that plus
// the TTL, by the client's count).
type redisLock struct {
	sess spec.SessionID
	key  string
	sent time.Time
}

func dialRedisFenced(ctx context.Context, addr string, rec *Recorder, ttl time.Duration, seed uint64, tokens bool) (lockClient, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: ttl, WriteTimeout: ttl})
	return &redisFenced{c: c, rec: rec, ttl: ttl, rng: rand.New(rand.NewPCG(seed, 1)), tokens: tokens}, nil
}

// set takes the key if it is free: the grant's token (0 without tokens),
// or redis.Nil if the key was held.
func (r *redisFenced) set(ctx context.Context, key, val, resource string) (uint64, error) {
	if !r.tokens {
		return 0, r.c.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", TTL: r.ttl}).Err()
	}
	n, err := acquireWithToken.Run(ctx, r.c, []string{key, redisPrefix + "token:" + resource}, val, r.ttl.Milliseconds()).Uint64()
	if err == nil && n == 0 {
		err = redis.Nil
	}
	return n, err
}

func (r *redisFenced) Acquire(ctx context.Context, resource string, wait time.Duration) (*grant, error) {
	var sess spec.SessionID
	for i := range sess {
		sess[i] = byte(r.rng.Uint32())
	}
	key, val := redisPrefix+"fenced:"+resource, sess.String()
	call := time.Now()
	for {
		sent := time.Now()
		token, err := r.set(ctx, key, val, resource)
		ret := time.Now()
		switch {
		case err == nil:
			// Token 0: the plain recipe has none (the harness numbers
			// the grants of each resource in the order they were
			// answered, for the checker only).
			r.rec.Acquire(sess, resource, wait, call, ret, Granted(token))
			return &grant{resource: resource, token: token, at: ret, lock: &redisLock{sess: sess, key: key, sent: sent}}, nil
		case notSent(err):
			// Refused at connect: the SET never left the client, so there
			// is nothing to record.
			return nil, err
		case !errors.Is(err, redis.Nil):
			// The SET may have taken the key, which then lives out its TTL.
			r.rec.Acquire(sess, resource, wait, call, ret, Unknown)
			r.rec.Expire(sess, []string{resource}, sent.Add(r.ttl), time.Time{})
			return nil, err
		case ret.Sub(call) >= wait:
			r.rec.Acquire(sess, resource, wait, call, ret, Refused(spec.Timeout))
			return nil, context.DeadlineExceeded
		}
		time.Sleep(redisPoll/2 + time.Duration(r.rng.Int64N(int64(redisPoll))))
	}
}

func (r *redisFenced) Deadline(g *grant) time.Time { return g.lock.(*redisLock).sent.Add(r.ttl) }

func (r *redisFenced) Release(ctx context.Context, g *grant) {
	l := g.lock.(*redisLock)
	call := time.Now()
	n, err := releaseScript.Run(ctx, r.c, []string{l.key}, l.sess.String()).Int()
	ret := time.Now()
	switch {
	case err != nil:
		r.rec.Release(l.sess, g.resource, call, ret, Unknown)
		r.rec.Expire(l.sess, []string{g.resource}, l.sent.Add(r.ttl), time.Time{})
	case n != 1:
		// The key was gone: the lock ended without this client, by its
		// TTL or by a server that lost it; the client learned it now.
		r.rec.Expire(l.sess, []string{g.resource}, l.sent.Add(r.ttl), ret)
	default:
		r.rec.Release(l.sess, g.resource, call, ret, Refused(spec.OK))
	}
}

func (r *redisFenced) Close() { _ = r.c.Close() }

// notSent reports whether a command failed while connecting, before it was
// written: it cannot have taken effect.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Holds reads the lock's key: held while it has the lock's random value.
func (r *redisFenced) Holds(ctx context.Context, g *grant) (bool, error) {
	l := g.lock.(*redisLock)
	v, err := r.c.Get(ctx, l.key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, err
	}
	return v == l.sess.String(), nil
}
