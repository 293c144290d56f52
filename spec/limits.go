package spec

import (
	"fmt"
	"time"
)

// Limits bounds everything the lock service keeps or accepts. Every field
// must be positive: zero never means "unlimited". Exceeding a capacity bound
// is a LimitExceeded outcome naming the bound; nothing changes.
type Limits struct {
	NameBytesMax          int // bytes in a resource name
	ValueBytesMax         int // bytes in a value block
	SessionsMax           int // live sessions on the node
	ResourcesMax          int // resources with a lock, a request or a lock-delay
	LocksPerSessionMax    int // locks held or requested by one session
	WaitersPerResourceMax int // queued conversions plus queued requests on one resource
	RepliesPerSessionMax  int // recorded outcomes one session has not acknowledged
	TombstonesMax         int // ended sessions remembered (to answer SessionExpired)

	TTLMin, TTLMax                 time.Duration // session lease
	WaitTimeoutMin, WaitTimeoutMax time.Duration // how long a request may queue
	LockDelayMax                   time.Duration

	InputsPerBatchMax int // inputs the loop takes in one turn (one fsync)
}

// PermitsMax bounds a semaphore's limit (Input.Limit).
const PermitsMax = 1 << 20

// LabelBytesMax bounds a session's label (Input.Label).
const LabelBytesMax = 128

// DefaultLimits are the limits a node uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		NameBytesMax:          256,
		ValueBytesMax:         1024,
		SessionsMax:           100_000,
		ResourcesMax:          1_000_000,
		LocksPerSessionMax:    10_000,
		WaitersPerResourceMax: 10_000,
		RepliesPerSessionMax:  1024,
		TombstonesMax:         100_000,
		TTLMin:                time.Second,
		TTLMax:                time.Hour,
		WaitTimeoutMin:        time.Millisecond,
		WaitTimeoutMax:        24 * time.Hour,
		LockDelayMax:          time.Minute,
		InputsPerBatchMax:     1024,
	}
}

// Validate reports the first field that is not positive or a range whose
// minimum exceeds its maximum.
func (l Limits) Validate() error {
	ints := []struct {
		name string
		v    int
	}{
		{"NameBytesMax", l.NameBytesMax}, {"ValueBytesMax", l.ValueBytesMax},
		{"SessionsMax", l.SessionsMax}, {"ResourcesMax", l.ResourcesMax},
		{"LocksPerSessionMax", l.LocksPerSessionMax},
		{"WaitersPerResourceMax", l.WaitersPerResourceMax},
		{"RepliesPerSessionMax", l.RepliesPerSessionMax},
		{"TombstonesMax", l.TombstonesMax}, {"InputsPerBatchMax", l.InputsPerBatchMax},
	}
	for _, f := range ints {
		if f.v <= 0 {
			return fmt.Errorf("limits: %s must be positive, got %d", f.name, f.v)
		}
	}
	durs := []struct {
		name     string
		min, max time.Duration
	}{
		{"TTL", l.TTLMin, l.TTLMax},
		{"WaitTimeout", l.WaitTimeoutMin, l.WaitTimeoutMax},
		{"LockDelay", time.Nanosecond, l.LockDelayMax},
	}
	for _, d := range durs {
		if d.min <= 0 || d.max <= 0 {
			return fmt.Errorf("limits: %sMin and %sMax must be positive", d.name, d.name)
		}
		if d.min > d.max {
			return fmt.Errorf("limits: %sMin %v exceeds %sMax %v", d.name, d.min, d.name, d.max)
		}
	}
	return nil
}
