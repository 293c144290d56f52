// Command fencedkv is a key-value store fenced by Bouncer's sequencers: a
// runnable example of a service that refuses stale writers.
//
// A writer holds the lock named like the key (in PW or EX) and sends the
// lock's sequencer with each write, in a Bouncer-Sequencer header. The
// store verifies it offline against the lock node's public key (no call
// to the node), and admits the write only if it is for that key, in a
// writer's mode, with a token no lower than the highest it has admitted
// for the key (sequencer.Fence). A writer that lost its lock (a pause
// past its lease, a partition) comes back with a lower token than its
// successor's and is refused with 409 Conflict.
//
//	bouncer serve --print-public-key          # on the node's host
//	go run ./examples/fencedkv --trust ed25519:...
//	bouncer lock --mode PW greeting -- sh -c \
//	    'curl -X PUT -H "Bouncer-Sequencer: $BOUNCER_SEQUENCER" --data-binary hello http://127.0.0.1:7480/kv/greeting'
//	curl http://127.0.0.1:7480/kv/greeting
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/sequencer"
)

// The lock's command line is quoted for sh so that $BOUNCER_SEQUENCER is
// expanded by the shell that bouncer lock starts, not by the one that
// starts bouncer lock (where it is not set yet).

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fencedkv:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("fencedkv", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:7480", "address to serve HTTP on")
	trust := fl.String("trust", os.Getenv("BOUNCER_PUBLIC_KEYS"),
		"the lock node's public key (bouncer serve --print-public-key), or a group's members' keys comma-separated (env BOUNCER_PUBLIC_KEYS)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *trust == "" {
		return errors.New("--trust: give the lock node's public key (bouncer serve --print-public-key)")
	}
	keys, err := sequencer.ParsePublicKeys(*trust)
	if err != nil {
		return fmt.Errorf("--trust: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return serve(lis, keys)
}

// serve serves the store on lis until SIGINT or SIGTERM.
func serve(lis net.Listener, keys []ed25519.PublicKey) error {
	srv := &http.Server{Handler: newStore(keys, storeBounds{}).handler(),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxHeaderBytes: 16 << 10}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Printf("fencedkv: serving on http://%s, trusting %d key(s)", lis.Addr(), len(keys))
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
