//go:build bugzoo

package main

// In a bugzoo build TestTour also runs the tour's blocks that replay a
// planted bug with bouncer-zoo.
func init() { tourZoo = true }
