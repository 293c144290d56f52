package lint

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bouncer-dlm/bouncer"

// root is the module's root, from this package's directory.
const root = "../.."

// pure lists the packages that promise determinism, by directory from the
// module root, with the rule set each keeps and the files that are its
// edges (they may do I/O, start goroutines and read the clock).
var pure = []struct {
	dir   string
	rules *ruleSet
	edges []string
}{
	{dir: "spec", rules: core},
	{dir: "engine", rules: core, edges: []string{"clock.go", "store.go", "node.go", "loop.go", "mailbox.go"}},
	{dir: "client/protocol", rules: core},
	{dir: "wire", rules: core},
	{dir: "internal/bugzoo", rules: core},
	{dir: "replica", rules: core, edges: []string{"config.go"}},
	// raftrand.go seeds crypto/rand.Reader, which raft draws its election
	// jitter from, for the length of a cluster run.
	{dir: "sim", rules: seeded, edges: []string{"raftrand.go"}},
	// The replay page: the same run gives the same page, byte for byte.
	{dir: "sim/replay", rules: seeded},
}

// ruleSet is what a pure package promises.
type ruleSet struct {
	name string
	// bannedImports may not appear, nor any package under them.
	bannedImports []string
	// seededRand allows math/rand/v2, but only its constructors of
	// generators (which the package seeds), never its global functions.
	seededRand bool
}

var core = &ruleSet{name: "core",
	bannedImports: []string{"os", "net", "sync", "sync/atomic", "math/rand", "math/rand/v2",
		"crypto/rand", "io", "syscall", "unsafe", "runtime", "log", "log/slog",
		"github.com/cockroachdb/pebble/v2"},
}

var seeded = &ruleSet{name: "seeded",
	bannedImports: []string{"os", "net", "sync/atomic", "math/rand", "crypto/rand", "syscall", "unsafe",
		"log", "log/slog", "github.com/cockroachdb/pebble/v2/vfs/atomicfs"},
	seededRand: true,
}

// randConstructors are the math/rand/v2 functions that make a generator
// from a seed the caller gives.
var randConstructors = []string{"New", "NewPCG", "NewChaCha8", "NewZipf"}

// bannedTimeCalls read or wait for the clock.
var bannedTimeCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"}

// allowedImports says which of our packages each top-level package may
// import: imports point down, never back up.
var allowedImports = map[string][]string{
	"spec":            {},
	"sequencer":       {"spec"},                       // for downstream services: no client, no server
	"engine":          {"spec", "internal"},           // internal/bugzoo, in the bugzoo build
	"replica":         {"engine", "spec", "internal"}, // and the raft module, which is external
	"cluster":         {"engine", "replica", "spec"},  // a member's loop: goroutines and clocks, no grpc
	"peer":            {},                             // the raft transport: raftpb and gRPC only
	"api":             {},
	"wire":            {"spec", "api"}, // the one mapping between spec and api
	"client":          {"spec", "api", "wire", "internal", "sequencer"},
	"linearizability": {"spec"},
	"sim":             {"engine", "replica", "client", "spec", "linearizability"},
	"server":          {"engine", "replica", "cluster", "api", "spec", "wire", "sequencer"},
	"bench":           {"spec", "engine", "api", "wire", "client", "server", "linearizability", "internal"}, // internal/linkproxy: bench/peers' partitions
	"cmd":             {"spec", "sequencer", "engine", "replica", "cluster", "peer", "api", "wire", "client", "server", "sim", "linearizability", "bench", "internal"},
	"internal":        {},
	"tla":             {},
	"examples":        {"sequencer", "spec"}, // downstream services: what they would import
}

// TestPure holds every package in pure to its rule set.
func TestPure(t *testing.T) {
	for _, p := range pure {
		t.Run(strings.ReplaceAll(p.dir, "/", "_"), func(t *testing.T) {
			for _, problem := range lintPure(t, filepath.Join(root, p.dir), p.rules, p.edges) {
				t.Error(problem)
			}
		})
	}
}

// TestPlanted shows that each rule of each rule set can fail: the planted
// file of a rule set breaks each of its rules once.
func TestPlanted(t *testing.T) {
	for _, c := range []struct {
		rules *ruleSet
		want  []string
	}{
		{core, []string{`imports "os"`, `imports "math/rand"`, `imports "sync"`, "time.Now", "go statement",
			"channel", "range over a map"}},
		{seeded, []string{`imports "os"`, `imports "crypto/rand"`, "rand.IntN", "time.Since", "go statement",
			"channel", "range over a map"}},
	} {
		t.Run(c.rules.name, func(t *testing.T) {
			problems := lintPure(t, filepath.Join("testdata", c.rules.name), c.rules, nil)
			all := strings.Join(problems, "\n")
			for _, want := range c.want {
				if !strings.Contains(all, want) {
					t.Errorf("the %s lint missed %q in its planted file; it said:\n%s", c.rules.name, want, all)
				}
			}
			// Seeded generators, sorted map ranges and "map order:" loops pass.
			if len(problems) != len(c.want) {
				t.Errorf("the %s lint said %d things of its planted file, want %d:\n%s", c.rules.name, len(problems), len(c.want), all)
			}
		})
	}
}

// TestImports checks the direction of imports across the module, and shows
// on a planted tree that the check can fail.
func TestImports(t *testing.T) {
	for _, p := range lintImports(t, root) {
		t.Error(p)
	}
	problems := strings.Join(lintImports(t, filepath.Join("testdata", "imports")), "\n")
	for _, want := range []string{"spec may not import " + module + "/engine", `under "gossip", which the import lint does not know`} {
		if !strings.Contains(problems, want) {
			t.Errorf("the import lint missed %q in the planted tree; it said:\n%s", want, problems)
		}
	}
}

// lintPure checks the non-test Go files of dir, except skip, against rules.
func lintPure(t *testing.T, dir string, rules *ruleSet, skip []string) []string {
	fset := token.NewFileSet()
	var files []*ast.File
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("%s: no Go files to lint", dir)
	}
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasSuffix(base, "_test.go") || slices.Contains(skip, base) {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if hasBuildTag(f, "invariants") {
			continue // the tagged twin of invariants_off.go
		}
		files = append(files, f)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: exportImporter(t, fset, files), Error: func(error) {}}
	_, _ = conf.Check(dir, fset, files, info) // partial type information suffices
	var problems []string
	report := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	for _, f := range files {
		randName := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range rules.bannedImports {
				if rules.seededRand && path == "math/rand/v2" {
					break // its global functions are checked below
				}
				if path == b || strings.HasPrefix(path, b+"/") {
					report(imp.Pos(), "%s package imports %q", rules.name, path)
				}
			}
			if path == "math/rand/v2" {
				randName = "rand"
				if imp.Name != nil {
					randName = imp.Name.Name
				}
			}
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				lintFunc(fn, f.Comments, info, rules, randName, report)
			}
		}
	}
	return problems
}

func lintFunc(fn *ast.FuncDecl, comments []*ast.CommentGroup, info *types.Info, rules *ruleSet, randName string,
	report func(token.Pos, string, ...any)) {
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n.Pos(), "go statement in a %s package", rules.name)
		case *ast.ChanType, *ast.SendStmt, *ast.SelectStmt:
			report(n.Pos(), "channel in a %s package", rules.name)
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				report(n.Pos(), "channel in a %s package", rules.name)
			}
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			switch {
			case !ok:
			case id.Name == "time" && slices.Contains(bannedTimeCalls, n.Sel.Name):
				report(n.Pos(), "time.%s reads the clock", n.Sel.Name)
			case rules.seededRand && id.Name == randName && !slices.Contains(randConstructors, n.Sel.Name) &&
				ast.IsExported(n.Sel.Name) && isFunc(info, n):
				report(n.Pos(), "rand.%s draws from the unseeded global generator: draw from a seeded *rand.Rand", n.Sel.Name)
			}
		case *ast.RangeStmt:
			if tv, ok := info.Types[n.X]; ok {
				if _, isMap := tv.Type.Underlying().(*types.Map); isMap && !sortedAfter(fn, n) && !hasMapOrderComment(comments, n) {
					report(n.Pos(), "range over a map whose order may reach an output: sort after it, in the same function")
				}
			}
		}
		return true
	})
}

// exportImporter imports the packages that files import from the export
// data the go command has built (and cached), which is much faster than
// type-checking them again from source.
func exportImporter(t *testing.T, fset *token.FileSet, files []*ast.File) types.Importer {
	args := []string{"list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}"}
	for _, f := range files {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(args, path) {
				args = append(args, path)
			}
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "="); ok && file != "" {
			exports[path] = file
		}
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
}

// isFunc reports whether sel names a function (not a type such as
// rand.Rand), when the type checker knows; unknown counts as a function.
func isFunc(info *types.Info, sel *ast.SelectorExpr) bool {
	tv, ok := info.Types[sel]
	return !ok || !tv.IsType()
}

// sortedAfter reports whether fn calls a sort after the range statement r:
// the pattern "collect keys, then sort" that makes map order harmless.
// Ranges whose order cannot matter (counting, deleting, copying into a map)
// say so with a "map order:" comment inside the loop.
func sortedAfter(fn *ast.FuncDecl, r *ast.RangeStmt) bool {
	found := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && call.Pos() > r.End() {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && (id.Name == "sort" || id.Name == "slices" && strings.HasPrefix(sel.Sel.Name, "Sort")) {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

func hasMapOrderComment(comments []*ast.CommentGroup, r *ast.RangeStmt) bool {
	for _, cg := range comments {
		if cg.Pos() > r.Pos() && cg.End() < r.End() && strings.Contains(cg.Text(), "map order:") {
			return true
		}
	}
	return false
}

func hasBuildTag(f *ast.File, tag string) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:build") && strings.Contains(c.Text, tag) && !strings.Contains(c.Text, "!"+tag) {
				return true
			}
		}
	}
	return false
}

// lintImports checks every package under dir against allowedImports.
func lintImports(t *testing.T, dir string) []string {
	var problems []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != dir && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		allowed, known := allowedImports[top]
		if !known {
			problems = append(problems, fmt.Sprintf("%s: package under %q, which the import lint does not know: add it to allowedImports", rel, top))
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := strings.Split(strings.TrimPrefix(p, module+"/"), "/")[0]
			if target != top && !slices.Contains(allowed, target) {
				problems = append(problems, fmt.Sprintf("%s: %s may not import %s", rel, top, p))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(problems)
	return problems
}
