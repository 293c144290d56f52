// Package gossip is a top-level package the import lint does not know yet.
package gossip
