// Package tla holds the TLA+ model of Bouncer (Bouncer.tla, see README.md)
// and a test that runs the TLC model checker on it when TLA2TOOLS_JAR names
// a tla2tools.jar. It has no Go code of its own.
package tla
