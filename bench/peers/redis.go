package peers

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisRetry is how long a Redis client waits before it tries a held lock
// again (jittered uniformly over ±50%). Redis has no wait queue: a client
// that finds the key set can only poll, as redsync and redislock do (their
// defaults are far longer: 50-250ms and 100ms).
var RedisRetry = time.Millisecond

// releaseScript deletes the key only if it still holds this client's token,
// so a client whose lock expired never releases another's.
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then
	return redis.call("del", KEYS[1])
end
return 0`)

// DialRedis opens one connection to a Redis server. A lock is
// SET key token NX PX ttl with a random token; release is releaseScript.
func DialRedis(ctx context.Context, addr string) (Client, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxRetries: -1, DisableIdentity: true,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &redisClient{c: c, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}, nil
}

type redisClient struct {
	c   *redis.Client
	rng *rand.Rand
}

const redisPrefix = "bench:"

func (r *redisClient) Lock(ctx context.Context, resource string, mode Mode) (Held, error) {
	if mode == Shared {
		return nil, ErrNoShared
	}
	for {
		h, err := r.TryLock(ctx, resource)
		if !errors.Is(err, ErrBusy) {
			return h, err
		}
		wait := RedisRetry/2 + time.Duration(r.rng.Int64N(int64(RedisRetry)+1))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func (r *redisClient) TryLock(ctx context.Context, resource string) (Held, error) {
	var b [16]byte
	_, _ = crand.Read(b[:])
	key, token := redisPrefix+resource, hex.EncodeToString(b[:])
	err := r.c.Do(ctx, "SET", key, token, "NX", "PX", sessionTTL.Milliseconds()).Err()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, err
	}
	return &redisHeld{c: r.c, key: key, token: token}, nil
}

func (r *redisClient) Close() error { return r.c.Close() }

type redisHeld struct {
	c          *redis.Client
	key, token string
}

func (h *redisHeld) Unlock(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, h.c, []string{h.key}, h.token).Int()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("redis: %s was no longer held (expired)", h.key)
	}
	return nil
}
