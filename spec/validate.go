package spec

import (
	"fmt"
	"unicode/utf8"
)

// CloneValue copies a value block, keeping every empty value as nil so that
// states compare equal however they were reached.
func CloneValue(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// Refuse is the Result of an operation refused with code, for detail.
func Refuse(code Code, detail string) Result { return Result{Code: code, Detail: detail} }

func invalid(format string, args ...any) (Result, bool) {
	return Refuse(InvalidArgument, fmt.Sprintf(format, args...)), false
}

func tooLarge(field string, n int, bound string, max int) (Result, bool) {
	return Refuse(LimitExceeded, fmt.Sprintf("%s: %d bytes exceeds %s %d", field, n, bound, max)), false
}

// Validate checks the fields of in that its Op uses, against lim, without
// looking at any state. It returns ok, or the InvalidArgument or
// LimitExceeded result naming the field and the bound. Validation depends on
// the input alone, so a retry is validated exactly as the original was.
func Validate(in *Input, lim *Limits) (Result, bool) {
	if in.Op < OpOpen || in.Op > OpCancel {
		return invalid("op: unknown operation %d", in.Op)
	}
	if in.Session.IsZero() {
		return invalid("session: must be set")
	}
	switch in.Op {
	case OpOpen:
		if in.TTL < lim.TTLMin || in.TTL > lim.TTLMax {
			return invalid("ttl: %v is outside [%v, %v] (TTLMin, TTLMax)", in.TTL, lim.TTLMin, lim.TTLMax)
		}
		if len(in.Label) > LabelBytesMax || !utf8.ValidString(in.Label) {
			return invalid("label: want at most %d bytes (LabelBytesMax) of UTF-8", LabelBytesMax)
		}
		return Result{}, true
	case OpKeepAlive, OpClose:
		return Result{}, true
	}
	if in.Request == 0 {
		return invalid("request: id must be greater than 0")
	}
	if in.Acked >= in.Request {
		return invalid("acked: %d must be below the request id %d", in.Acked, in.Request)
	}
	if in.Resource == "" {
		return invalid("resource: name must not be empty")
	}
	if len(in.Resource) > lim.NameBytesMax {
		return tooLarge("resource", len(in.Resource), "NameBytesMax", lim.NameBytesMax)
	}
	switch in.Op {
	case OpAcquire, OpConvert:
		if !in.Mode.Valid() {
			return invalid("mode: %d is not a lock mode (NL CR CW PR PW EX)", in.Mode)
		}
		if r, ok := validateWait(in, lim); !ok {
			return r, ok
		}
	}
	if in.Op == OpAcquire {
		if in.LockDelay < 0 || in.LockDelay > lim.LockDelayMax {
			return invalid("lock_delay: %v is outside [0, %v] (LockDelayMax)", in.LockDelay, lim.LockDelayMax)
		}
		if in.WriteValue {
			return invalid("value: acquire cannot write the value block")
		}
		if (in.Permits != 0 || in.Limit != 0) && (in.Permits == 0 || in.Permits > in.Limit || in.Limit > PermitsMax) {
			return invalid("permits: %d of a semaphore of limit %d: want 1 <= permits <= limit <= %d (PermitsMax)", in.Permits, in.Limit, PermitsMax)
		}
		if in.Permits != 0 && in.Mode != PR {
			return invalid("mode: a semaphore's permits are acquired in PR, not %v", in.Mode)
		}
	} else if in.Permits != 0 || in.Limit != 0 {
		return invalid("permits: only acquire asks for a semaphore's permits")
	}
	if in.WriteValue && (in.Op == OpRelease || in.Op == OpConvert) && len(in.Value) > lim.ValueBytesMax {
		return tooLarge("value", len(in.Value), "ValueBytesMax", lim.ValueBytesMax)
	}
	if in.WriteValue && in.Op == OpCancel {
		return invalid("value: cancel cannot write the value block")
	}
	return Result{}, true
}

func validateWait(in *Input, lim *Limits) (Result, bool) {
	if in.NoQueue {
		if in.WaitTimeout != 0 {
			return invalid("wait_timeout: must be 0 with no_queue (a try never waits)")
		}
		return Result{}, true
	}
	if in.WaitTimeout < lim.WaitTimeoutMin || in.WaitTimeout > lim.WaitTimeoutMax {
		return invalid("wait_timeout: %v is outside [%v, %v] (WaitTimeoutMin, WaitTimeoutMax)",
			in.WaitTimeout, lim.WaitTimeoutMin, lim.WaitTimeoutMax)
	}
	return Result{}, true
}
