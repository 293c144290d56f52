// Package spec imports upward, which the import lint must refuse.
package spec

import _ "github.com/bouncer-dlm/bouncer/engine"
