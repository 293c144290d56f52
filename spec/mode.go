package spec

import (
	"fmt"
	"strings"
)

// Mode is one of the six classic DLM lock modes, ordered from the weakest
// (NL) to the strongest (EX). The numeric order is the DLM's; it is a total
// order used for "higher blocked mode" in blocking notifications, while the
// compatibility matrix below is what decides grants.
type Mode uint8

const (
	NL Mode = iota // null: holds a place, conflicts with nothing
	CR             // concurrent read (~IS)
	CW             // concurrent write (~IX)
	PR             // protected read (~S)
	PW             // protected write (~SIX)
	EX             // exclusive (~X)

	// ModeCount is the number of modes; valid modes are below it.
	ModeCount = 6
)

// Shared and Exclusive are the read/write-lock names for PR and EX.
const (
	Shared    = PR
	Exclusive = EX
)

var modeNames = [ModeCount]string{"NL", "CR", "CW", "PR", "PW", "EX"}

// compatible is the DLM's compatibility matrix: compatible[a][b] is true when a lock
// granted in mode a and one granted in mode b may be held at once.
var compatible = [ModeCount][ModeCount]bool{
	//        NL    CR     CW     PR     PW     EX
	NL: {true, true, true, true, true, true},
	CR: {true, true, true, true, true, false},
	CW: {true, true, true, false, false, false},
	PR: {true, true, false, true, false, false},
	PW: {true, true, false, false, false, false},
	EX: {true, false, false, false, false, false},
}

// Valid reports whether m is one of the six modes.
func (m Mode) Valid() bool { return m < ModeCount }

func (m Mode) String() string {
	if !m.Valid() {
		return fmt.Sprintf("Mode(%d)", uint8(m))
	}
	return modeNames[m]
}

// Compatible reports whether locks in modes a and b may be granted at once.
// Both modes must be valid.
func Compatible(a, b Mode) bool { return compatible[a][b] }

// Weaker reports whether a conflicts with nothing that b does not conflict
// with: every mode compatible with b is compatible with a. A conversion from
// b to a Weaker mode (a down-conversion) can always be granted in place.
// Note PR and CW are not ordered this way: PR->CW is not a down-conversion.
func Weaker(a, b Mode) bool {
	for m := Mode(0); m < ModeCount; m++ {
		if compatible[b][m] && !compatible[a][m] {
			return false
		}
	}
	return true
}

// WritesValue reports whether a holder in mode m may write the value block
// (on release or down-conversion): PW and EX, as in the DLM.
func (m Mode) WritesValue() bool { return m == PW || m == EX }

// ParseMode parses a mode name, case-insensitively: NL CR CW PR PW EX, and
// the aliases "shared" (PR) and "exclusive" (EX).
func ParseMode(s string) (Mode, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case "SHARED":
		return Shared, nil
	case "EXCLUSIVE":
		return Exclusive, nil
	}
	for m, name := range modeNames {
		if u == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown lock mode %q: want one of NL, CR, CW, PR, PW, EX, shared, exclusive", s)
}
