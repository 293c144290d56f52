package engine_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bouncer-dlm/bouncer"

// impureFiles are the engine files that are edges, not core: they may do
// I/O, start goroutines and read the clock.
var impureFiles = []string{"store.go", "node.go", "loop.go", "clock.go"}

// bannedImports may not appear in the core (engine minus impureFiles, spec).
var bannedImports = []string{"os", "net", "sync", "sync/atomic", "math/rand", "math/rand/v2",
	"crypto/rand", "io", "syscall", "unsafe", "runtime", "log", "log/slog",
	"github.com/cockroachdb/pebble/v2"}

// bannedTimeCalls read or wait for the clock.
var bannedTimeCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"}

// allowedImports says which of our packages each top-level package may
// import (DESIGN.md: imports point down, never back up).
var allowedImports = map[string][]string{
	"spec":            {},
	"engine":          {"spec"},
	"api":             {},
	"wire":            {"spec", "api"}, // the one mapping between spec and api
	"client":          {"spec", "api", "wire"},
	"linearizability": {"spec"},
	"sim":             {"engine", "client", "spec", "linearizability"},
	"server":          {"engine", "api", "spec", "wire"},
	"bench":           {"spec", "engine", "api", "wire", "client", "server", "linearizability"},
	"cmd":             {"spec", "engine", "api", "wire", "client", "server", "sim", "linearizability", "bench"},
	"tla":             {},
}

// TestLint enforces the determinism of the core and the direction of
// imports, and shows on a planted file that the core lint can fail.
func TestLint(t *testing.T) {
	t.Run("core", func(t *testing.T) {
		for _, dir := range []string{".", "../spec"} {
			for _, p := range lintCore(t, dir, impureFiles) {
				t.Error(p)
			}
		}
	})
	t.Run("planted", func(t *testing.T) {
		problems := strings.Join(lintCore(t, "testdata/lint/badcore", nil), "\n")
		for _, want := range []string{`imports "os"`, `imports "math/rand"`, "time.Now", "go statement",
			"channel", "range over a map"} {
			if !strings.Contains(problems, want) {
				t.Errorf("the lint missed %q in the planted file; it said:\n%s", want, problems)
			}
		}
	})
	t.Run("imports", func(t *testing.T) {
		for _, p := range lintImports(t, "..") {
			t.Error(p)
		}
	})
}

// lintCore checks the non-test Go files of dir, except skip.
func lintCore(t *testing.T, dir string, skip []string) []string {
	fset := token.NewFileSet()
	var files []*ast.File
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
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
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil), Error: func(error) {}}
	_, _ = conf.Check(dir, fset, files, info) // partial type information suffices
	var problems []string
	report := func(pos token.Pos, format string, args ...any) {
		problems = append(problems, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	for _, f := range files {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range bannedImports {
				if path == b || strings.HasPrefix(path, b+"/") {
					report(imp.Pos(), "core imports %q", path)
				}
			}
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				lintFunc(fn, f.Comments, info, report)
			}
		}
	}
	return problems
}

func lintFunc(fn *ast.FuncDecl, comments []*ast.CommentGroup, info *types.Info, report func(token.Pos, string, ...any)) {
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n.Pos(), "go statement in the core")
		case *ast.ChanType, *ast.SendStmt, *ast.SelectStmt:
			report(n.Pos(), "channel in the core")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				report(n.Pos(), "channel in the core")
			}
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains(bannedTimeCalls, n.Sel.Name) {
				report(n.Pos(), "time.%s reads the clock", n.Sel.Name)
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

// lintImports checks every package of the module against allowedImports.
func lintImports(t *testing.T, root string) []string {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
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
