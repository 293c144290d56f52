package spec

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// QuoteName is how a resource name is printed for people (CLI output, logs,
// error messages). A name is arbitrary bytes, up to NameBytesMax: printed
// raw, one holding a terminal escape, a newline or a right-to-left mark
// could rewrite an operator's screen or fake a row of a table. A name of
// printable characters only (no space, quote or backslash) prints as it
// is; any other is quoted as a Go string literal, its non-printable bytes
// escaped, so that the two forms never look alike.
func QuoteName(name string) string {
	if name == "" {
		return `""`
	}
	for _, r := range name {
		if r == utf8.RuneError || r == ' ' || r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return strconv.Quote(name)
		}
	}
	return name
}
