// Package engine imports downward, which the import lint allows.
package engine

import _ "github.com/bouncer-dlm/bouncer/spec"
