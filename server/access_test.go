package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// servedServices are the services a node registers (Register): every
// method of each must be classified in methodRules.
var servedServices = []struct {
	desc *grpc.ServiceDesc
	file protoreflect.FileDescriptor
}{
	{&pb.Locks_ServiceDesc, pb.File_bouncerv1_bouncer_proto},
	{&pb.Cluster_ServiceDesc, pb.File_bouncerv1_bouncer_proto},
	{&healthpb.Health_ServiceDesc, healthpb.File_grpc_health_v1_health_proto},
}

// TestAccessTableCovers: every method of every service the node serves is
// in the access table, no entry names a method nobody serves, and a method
// judged by its resource (or prefix) takes a request that has one. An RPC
// added without a line in methodRules fails here (and is denied to all).
func TestAccessTableCovers(t *testing.T) {
	served := map[string]bool{}
	for _, svc := range servedServices {
		var names []string
		for _, m := range svc.desc.Methods {
			names = append(names, m.MethodName)
		}
		for _, st := range svc.desc.Streams {
			names = append(names, st.StreamName)
		}
		sd := svc.file.Services().ByName(protoreflect.FullName(svc.desc.ServiceName).Name())
		require.NotNil(t, sd, svc.desc.ServiceName)
		for _, n := range names {
			full := "/" + svc.desc.ServiceName + "/" + n
			served[full] = true
			rule, ok := methodRules[full]
			if !assertClassified(t, full, ok) {
				continue
			}
			in := sd.Methods().ByName(protoreflect.Name(n)).Input()
			switch rule.scope {
			case scopeResource:
				f := in.Fields().ByName("resource")
				require.True(t, f != nil && f.Kind() == protoreflect.BytesKind, "%s is judged by its resource but %s has none", full, in.FullName())
			case scopeListed:
				f := in.Fields().ByName("prefix")
				require.True(t, f != nil && f.Kind() == protoreflect.BytesKind, "%s is judged by its prefix but %s has none", full, in.FullName())
			}
			if rule.scope == scopeOpen {
				require.True(t, strings.HasPrefix(full, healthPrefix), "%s is open to anyone: only health checks may be", full)
			}
		}
	}
	for m := range methodRules {
		require.True(t, served[m], "access table entry %s names a method no service serves", m)
	}
}

func assertClassified(t *testing.T, method string, ok bool) bool {
	t.Helper()
	if !ok {
		t.Errorf("%s has no line in methodRules (server/accessmethods.go): give it the right it needs and its scope", method)
	}
	return ok
}

// TestJudgeUnclassifiedDenied: a method missing from the table is denied
// even to an identity with every right on every name.
func TestJudgeUnclassifiedDenied(t *testing.T) {
	all := &Identity{Name: "root", Grants: []Grant{{Prefix: "", Rights: RightLock | RightRead | RightAdmin}}}
	require.NoError(t, judge(all, locksMethod("Acquire"), &pb.AcquireRequest{Resource: []byte("x")}))
	err := judge(all, locksMethod("NotYetClassified"), &pb.AcquireRequest{Resource: []byte("x")})
	require.ErrorContains(t, err, "not in the node's access table")
}

// TestJudgePrefixes: the prefix semantics on their own, including a name
// that merely shares letters with a grant.
func TestJudgePrefixes(t *testing.T) {
	w := &Identity{Name: "w", Grants: []Grant{{Prefix: "jobs/", Rights: RightLock}, {Prefix: "", Rights: RightRead}}}
	acq := func(name string) error {
		return judge(w, locksMethod("Acquire"), &pb.AcquireRequest{Resource: []byte(name)})
	}
	require.NoError(t, acq("jobs/a"))
	require.NoError(t, acq("jobs/"))
	require.ErrorContains(t, acq("jobs"), `Acquire needs the lock right on resource "jobs"`)
	require.ErrorContains(t, acq("other/jobs/a"), `identity "w" has no such grant`)
	require.NoError(t, judge(w, locksMethod("List"), &pb.ListRequest{Prefix: []byte("")}))
	require.ErrorContains(t, judge(w, clusterMethod("Status"), &pb.ClusterStatusRequest{}), "admin right on every name")
	require.NoError(t, judge(w, locksMethod("OpenSession"), nil))
	r := &Identity{Name: "r", Grants: []Grant{{Prefix: "a/", Rights: RightRead}}}
	require.ErrorContains(t, judge(r, locksMethod("List"), &pb.ListRequest{Prefix: []byte("")}), `List needs the read right on prefix ""`)
	require.NoError(t, judge(r, locksMethod("List"), &pb.ListRequest{Prefix: []byte("a/b")}))
	require.ErrorContains(t, judge(r, locksMethod("OpenSession"), nil), "OpenSession needs the lock right on some prefix")
}

// writeFile writes a file under dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// TestLoadAccessFile: a good file loads, with a token inline, a token
// file (relative to the access file) and a certificate name.
func TestLoadAccessFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "reader.token", "  r-token\n")
	p := writeFile(t, dir, "access.json", `{"identities": [
		{"name": "worker", "token": "w-token", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]},
		{"name": "reader", "token_file": "reader.token", "grants": [{"prefix": "", "rights": ["read"]}]},
		{"name": "ops", "cert": "ops.example", "token": "o-token", "grants": [{"prefix": "", "rights": ["admin", "read"]}]}
	]}`)
	a, err := LoadAccessFile(p)
	require.NoError(t, err)
	require.Equal(t, 3, a.Identities())
	require.Equal(t, p, a.Path())
	require.Equal(t, "worker", a.byToken("w-token").Name)
	require.Equal(t, "reader", a.byToken("r-token").Name)
	require.Equal(t, "ops", a.byToken("o-token").Name)
	require.Nil(t, a.byToken("nobody"))
	require.Equal(t, "ops", a.byCert([]string{"cn", "ops.example"}).Name)
	require.Nil(t, a.byCert([]string{"cn"}))
	require.Equal(t, RightAdmin|RightRead, a.byCert([]string{"ops.example"}).Grants[0].Rights)
}

// TestLoadAccessFileRefuses: each bad file is refused with an error that
// names the file, the entry and what is wrong.
func TestLoadAccessFileRefuses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty.token", "\n \n")
	grant := `"grants": [{"prefix": "", "rights": ["lock"]}]`
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"unknown right", `{"identities": [{"name": "a", "token": "t", "grants": [{"prefix": "x/", "rights": ["lock", "write"]}]}]}`,
			[]string{`identity 1 ("a")`, "grant 1", `unknown right "write"`}},
		{"empty identity", `{"identities": [{"name": "a", "token": "t", ` + grant + `}, {}]}`,
			[]string{"identity 2", `no "name"`}},
		{"no credential", `{"identities": [{"name": "a", ` + grant + `}]}`,
			[]string{`identity 1 ("a")`, "no credential"}},
		{"duplicate token", `{"identities": [{"name": "a", "token": "t", ` + grant + `}, {"name": "b", "token": "t", ` + grant + `}]}`,
			[]string{`identity 2 ("b")`, `its token is also "a"'s`}},
		{"duplicate cert", `{"identities": [{"name": "a", "cert": "c", ` + grant + `}, {"name": "b", "cert": "c", ` + grant + `}]}`,
			[]string{`identity 2 ("b")`, `certificate name "c" is also "a"'s`}},
		{"duplicate name", `{"identities": [{"name": "a", "token": "t", ` + grant + `}, {"name": "a", "token": "u", ` + grant + `}]}`,
			[]string{`identity 2 ("a")`, "listed twice"}},
		{"unknown field", `{"identities": [{"name": "a", "token": "t", "grant": []}]}`,
			[]string{"identity 1", `unknown field "grant"`}},
		{"unknown grant field", `{"identities": [{"name": "a", "token": "t", "grants": [{"prefix": "", "rights": ["read"], "deny": true}]}]}`,
			[]string{`identity 1 ("a")`, "grant 1", `unknown field "deny"`}},
		{"unknown top field", `{"identites": []}`, []string{`unknown field "identites"`}},
		{"no grants", `{"identities": [{"name": "a", "token": "t"}]}`, []string{`identity 1 ("a")`, `no "grants"`}},
		{"no prefix", `{"identities": [{"name": "a", "token": "t", "grants": [{"rights": ["read"]}]}]}`,
			[]string{"grant 1", `no "prefix"`}},
		{"no rights", `{"identities": [{"name": "a", "token": "t", "grants": [{"prefix": "a/"}]}]}`,
			[]string{"grant 1", `no "rights"`}},
		{"admin on a prefix", `{"identities": [{"name": "a", "token": "t", "grants": [{"prefix": "a/", "rights": ["admin"]}]}]}`,
			[]string{"grant 1", `admin on prefix "a/"`}},
		{"token and token file", `{"identities": [{"name": "a", "token": "t", "token_file": "x", ` + grant + `}]}`,
			[]string{`identity 1 ("a")`, "both given"}},
		{"unreadable token file", `{"identities": [{"name": "a", "token_file": "missing.token", ` + grant + `}]}`,
			[]string{`identity 1 ("a")`, "token_file", "missing.token", "no such file"}},
		{"empty token file", `{"identities": [{"name": "a", "token_file": "empty.token", ` + grant + `}]}`,
			[]string{`identity 1 ("a")`, "holds no token"}},
		{"token with a space", `{"identities": [{"name": "a", "token": "t u", ` + grant + `}]}`,
			[]string{`identity 1 ("a")`, "white space"}},
		{"no identities", `{"identities": []}`, []string{"no identities"}},
		{"syntax", "{\"identities\": [\n{\"name\": \"a\",, }]}", []string{"line 2"}},
		{"wrong type", `{"identities": [{"name": 7}]}`, []string{"identity 1", `"name"`, "want a JSON string"}},
		{"trailing", `{"identities": [{"name": "a", "token": "t", ` + grant + `}]} {}`, []string{"more after the JSON value"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".json", c.text)
			_, err := LoadAccessFile(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), "access file "+p+": ")
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	t.Run("unreadable file", func(t *testing.T) {
		p := filepath.Join(dir, "absent.json")
		_, err := LoadAccessFile(p)
		require.ErrorContains(t, err, "access file "+p+": ")
		require.ErrorContains(t, err, "no such file")
	})
}
