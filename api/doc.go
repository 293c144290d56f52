// Package api holds Bouncer's wire protocol: bouncerv1/bouncer.proto and
// the Go code generated from it (committed; regenerate with generate.sh).
// Package spec's types map onto it in package wire, and only there.
package api
