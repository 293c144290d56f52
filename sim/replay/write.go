package replay

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
)

// pageHTML is the page: its style and script inline, with two holes, the
// title and the data.
//
//go:embed page.html
var pageHTML string

// Write writes the page: one HTML file that needs nothing else.
func (p *Page) Write(w io.Writer) error {
	// encoding/json escapes <, > and & (and U+2028, U+2029), so the data
	// cannot end the script element it sits in.
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	head, rest, ok := strings.Cut(pageHTML, "__DATA__")
	if !ok {
		return fmt.Errorf("replay: the page template has no data hole")
	}
	head = strings.Replace(head, "__TITLE__", html.EscapeString(p.Title), 1)
	for _, part := range [][]byte{[]byte(head), data, []byte(rest)} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}
