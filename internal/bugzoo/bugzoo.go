// Package bugzoo is the registry of planted bugs that the engine, the client
// protocol and the replica share: each package lists its bugs by name, with
// what each gets wrong, and tests its hooks with Zoo.Planted (behind its
// bugzoo build tag, so that outside that build every hook is a constant
// false the compiler removes). One bug is planted at a time per package.
package bugzoo

import "fmt"

// Bug is a planted mistake: its name and what it gets wrong.
type Bug struct{ Name, Doc string }

// Zoo is one package's planted bugs and the one planted now ("" none).
type Zoo struct {
	owner   string
	bugs    []Bug
	planted string
}

// New returns the zoo of owner (a package name, for errors) with bugs.
func New(owner string, bugs ...Bug) *Zoo { return &Zoo{owner: owner, bugs: bugs} }

// Planted reports whether the named bug is planted.
func (z *Zoo) Planted(name string) bool { return z.planted == name }

// Plant plants the named bug ("" removes it).
func (z *Zoo) Plant(name string) error {
	for _, b := range z.bugs {
		if b.Name == name || name == "" {
			z.planted = name
			return nil
		}
	}
	return fmt.Errorf("%s: no planted bug %q", z.owner, name)
}

// Bugs returns the names of the bugs and what each gets wrong.
func (z *Zoo) Bugs() map[string]string {
	out := map[string]string{}
	for _, b := range z.bugs {
		out[b.Name] = b.Doc
	}
	return out
}
