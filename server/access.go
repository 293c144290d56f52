package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Access rules by resource-name prefix. An access file lists identities,
// each known by a bearer token and/or a client certificate's name, and
// each with grants: a right on every resource whose name starts with a
// prefix. A call is judged by the table in accessmethods.go: the right its
// method needs, on the name it concerns. The README's "Access by name
// prefix" says the same for users.

// Right is a set of rights, one bit each.
type Right uint8

const (
	// RightLock: sessions and lock calls (OpenSession, KeepAlive,
	// CloseSession, Acquire, Convert, Release, Cancel, Pipe, Events).
	RightLock Right = 1 << iota
	// RightRead: looking at resources (Describe, List, Watch).
	RightRead
	// RightAdmin: the Cluster service; granted only on the prefix "" (a
	// group's administration concerns every name).
	RightAdmin
)

var rightNames = []struct {
	r    Right
	name string
}{{RightLock, "lock"}, {RightRead, "read"}, {RightAdmin, "admin"}}

// String names the rights, "lock+read" say.
func (r Right) String() string {
	var names []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

func parseRight(s string) (Right, bool) {
	for _, n := range rightNames {
		if n.name == s {
			return n.r, true
		}
	}
	return 0, false
}

// Bounds on an access file: it is read whole, on start and on every
// reload, so it must stay small.
const (
	accessFileBytesMax   = 4 << 20
	identitiesMax        = 10000
	grantsPerIdentMax    = 1000
	tokenBytesMax        = 4096
	identityNameBytesMax = 256
	prefixBytesMax       = 4096 // above any NameBytesMax a node runs with
)

// Grant is a right on every resource whose name starts with Prefix ("":
// every name).
type Grant struct {
	Prefix string
	Rights Right
}

// Identity is who a call comes from, and what it may do.
type Identity struct {
	Name   string
	Grants []Grant
}

// allows reports whether id has right on every name starting with prefix
// (a resource's name is a prefix of itself).
func (id *Identity) allows(right Right, prefix string) bool {
	for _, g := range id.Grants {
		if g.Rights&right != 0 && strings.HasPrefix(prefix, g.Prefix) {
			return true
		}
	}
	return false
}

// allowsSome reports whether id has right on at least one prefix.
func (id *Identity) allowsSome(right Right) bool {
	for _, g := range id.Grants {
		if g.Rights&right != 0 {
			return true
		}
	}
	return false
}

// AccessRules are the identities of one access file. They never change:
// a reload makes new rules.
type AccessRules struct {
	path   string
	tokens map[[sha256.Size]byte]*Identity // by the token's hash: a lookup tells nothing of the token by its timing
	certs  map[string]*Identity            // by certificate name (subject CN, DNS or URI SAN)
	count  int
}

// Path is the file the rules were read from (a reload reads it again).
func (a *AccessRules) Path() string { return a.path }

// Identities is how many identities the rules list
// (0 for nil: no rules).
func (a *AccessRules) Identities() int {
	if a == nil {
		return 0
	}
	return a.count
}

// byToken is the identity a bearer token names, if any.
func (a *AccessRules) byToken(token string) *Identity {
	return a.tokens[sha256.Sum256([]byte(token))]
}

// byCert is the identity of the first of names (a certificate's subject
// CN, then its DNS SANs, then its URI SANs) that one is listed under.
func (a *AccessRules) byCert(names []string) *Identity {
	for _, n := range names {
		if id := a.certs[n]; id != nil {
			return id
		}
	}
	return nil
}

// The access file, as JSON. Unknown fields are refused, so that a typo
// ("grant" for "grants") cannot silently grant nothing or everything.
type accessFile struct {
	Identities []json.RawMessage `json:"identities"`
}

type identityEntry struct {
	Name      string            `json:"name"`
	Token     string            `json:"token"`
	TokenFile string            `json:"token_file"`
	Cert      string            `json:"cert"`
	Grants    []json.RawMessage `json:"grants"`
}

type grantEntry struct {
	Prefix *string  `json:"prefix"`
	Rights []string `json:"rights"`
}

// LoadAccessFile reads and checks an access file. Every error names the
// file, and the identity and grant it is about.
func LoadAccessFile(path string) (*AccessRules, error) {
	a, err := loadAccess(path)
	if err != nil {
		return nil, fmt.Errorf("access file %s: %w", path, err)
	}
	return a, nil
}

func loadAccess(path string) (*AccessRules, error) {
	b, err := readBounded(path, accessFileBytesMax)
	if err != nil {
		return nil, err
	}
	var f accessFile
	if err := decodeStrict(b, &f); err != nil {
		return nil, err
	}
	if len(f.Identities) == 0 {
		return nil, errors.New(`no identities: it needs {"identities": [...]} with at least one`)
	}
	if len(f.Identities) > identitiesMax {
		return nil, fmt.Errorf("%d identities, more than the %d allowed", len(f.Identities), identitiesMax)
	}
	a := &AccessRules{path: path, tokens: map[[sha256.Size]byte]*Identity{}, certs: map[string]*Identity{},
		count: len(f.Identities)}
	names := map[string]bool{}
	for i, raw := range f.Identities {
		id, token, cert, err := loadIdentity(filepath.Dir(path), raw)
		where := fmt.Sprintf("identity %d", i+1)
		if id != nil && id.Name != "" {
			where += fmt.Sprintf(" (%q)", id.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if names[id.Name] {
			return nil, fmt.Errorf("%s: the name is listed twice", where)
		}
		names[id.Name] = true
		if token != "" {
			sum := sha256.Sum256([]byte(token))
			if other := a.tokens[sum]; other != nil {
				return nil, fmt.Errorf("%s: its token is also %q's: a token must name one identity", where, other.Name)
			}
			a.tokens[sum] = id
		}
		if cert != "" {
			if other := a.certs[cert]; other != nil {
				return nil, fmt.Errorf("%s: certificate name %q is also %q's", where, cert, other.Name)
			}
			a.certs[cert] = id
		}
	}
	return a, nil
}

// loadIdentity reads one identity entry, its token and its certificate
// name; dir is the access file's folder, where a relative token_file is.
func loadIdentity(dir string, raw json.RawMessage) (id *Identity, token, cert string, err error) {
	var e identityEntry
	if err := decodeStrict(raw, &e); err != nil {
		return nil, "", "", err
	}
	id = &Identity{Name: e.Name}
	token, err = e.check(dir)
	if err == nil {
		id.Grants, err = loadGrants(e.Grants)
	}
	return id, token, e.Cert, err
}

// check checks the entry's name and credentials, and returns its token
// ("" if it has none).
func (e *identityEntry) check(dir string) (string, error) {
	switch {
	case e.Name == "":
		return "", errors.New(`no "name": every identity needs one (logs and refusals name it)`)
	case len(e.Name) > identityNameBytesMax:
		return "", fmt.Errorf("name: more than %d bytes", identityNameBytesMax)
	case e.Token == "" && e.TokenFile == "" && e.Cert == "":
		return "", errors.New(`no credential: give "token", "token_file" or "cert" (or a token and a cert)`)
	case e.Token != "" && e.TokenFile != "":
		return "", errors.New(`"token" and "token_file" both given: give one`)
	}
	token := e.Token
	if e.TokenFile != "" {
		p := e.TokenFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := readBounded(p, tokenBytesMax+1)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return "", fmt.Errorf("token_file: %s holds no token", p)
		}
	}
	if len(token) > tokenBytesMax {
		return "", fmt.Errorf("token: more than %d bytes", tokenBytesMax)
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return "", errors.New("token: holds white space, which a bearer token cannot carry")
	}
	return token, nil
}

// loadGrants reads an identity's grants.
func loadGrants(raws []json.RawMessage) ([]Grant, error) {
	if len(raws) == 0 {
		return nil, errors.New(`no "grants": an identity with none could do nothing (remove it instead)`)
	}
	if len(raws) > grantsPerIdentMax {
		return nil, fmt.Errorf("%d grants, more than the %d allowed", len(raws), grantsPerIdentMax)
	}
	grants := make([]Grant, 0, len(raws))
	for j, raw := range raws {
		g, err := loadGrant(raw)
		if err != nil {
			return nil, fmt.Errorf("grant %d: %w", j+1, err)
		}
		grants = append(grants, g)
	}
	return grants, nil
}

func loadGrant(raw json.RawMessage) (Grant, error) {
	var e grantEntry
	if err := decodeStrict(raw, &e); err != nil {
		return Grant{}, err
	}
	if e.Prefix == nil {
		return Grant{}, errors.New(`no "prefix": give one ("" is every name)`)
	}
	if len(*e.Prefix) > prefixBytesMax {
		return Grant{}, fmt.Errorf("prefix: more than %d bytes", prefixBytesMax)
	}
	if len(e.Rights) == 0 {
		return Grant{}, errors.New(`no "rights": give some of lock, read, admin`)
	}
	g := Grant{Prefix: *e.Prefix}
	for _, name := range e.Rights {
		r, ok := parseRight(name)
		if !ok {
			return Grant{}, fmt.Errorf("unknown right %q: the rights are lock, read and admin", name)
		}
		g.Rights |= r
	}
	if g.Rights&RightAdmin != 0 && g.Prefix != "" {
		return Grant{}, fmt.Errorf(`admin on prefix %q: admin is granted only on "" (the Cluster service concerns every name)`, g.Prefix)
	}
	return g, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// anything after the value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(b, err)
	}
	if dec.More() {
		return errors.New("more after the JSON value")
	}
	return nil
}

// jsonError says what is wrong in words a user knows: the line of a
// syntax error, the field of a wrong type.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		return fmt.Errorf("line %d: %v", line, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%q: want a JSON %s, not a %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// jsonKind names a Go kind as JSON does.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "ptr":
		return "string"
	}
	return goKind
}
