//go:build !bugzoo

package sim

// Outside the bugzoo build no bug can be planted.

func plantedBugName() string { return "" }

func bugForbidsDiskFaults() bool { return false }
