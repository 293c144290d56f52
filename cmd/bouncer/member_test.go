package main

import (
	"slices"
	"testing"
)

// TestStalePeers: a member forgets the peers that left the group; one that
// joined a running group does too, once it sees itself among the voters.
func TestStalePeers(t *testing.T) {
	for _, c := range []struct {
		name    string
		voters  []uint64
		joined  bool
		want    []uint64
		because string
	}{
		{"no configuration yet", nil, false, nil, "an empty configuration says nothing"},
		{"a member of the first group", []uint64{1, 2, 4}, false, []uint64{3}, "member 3 was removed"},
		{"a joiner not yet among the voters", []uint64{1, 2, 3}, true, nil, "its configuration may be older than the group's"},
		{"a joiner among the voters", []uint64{1, 2, 4}, true, []uint64{3}, "member 3 was removed after the join"},
	} {
		got := stalePeers(4, c.voters, []uint64{1, 2, 3, 4}, c.joined)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: stale %v, want %v (%s)", c.name, got, c.want, c.because)
		}
	}
}
