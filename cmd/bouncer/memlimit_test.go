package main

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "off": 0, "1024": 1024, "64MiB": 64 << 20, "64MB": 64 << 20,
		"2GiB": 2 << 30, "512KiB": 512 << 10, "100B": 100, " 8 MiB ": 8 << 20} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "64XB", "MiB", "1.5GiB", "99999999999GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) took it", in)
		}
	}
	t.Setenv("GOMEMLIMIT", "")
	if got, err := memoryLimit(defaultMemoryLimit, false); err != nil || got != 64<<20 {
		t.Errorf("default limit %d, %v", got, err)
	}
}
