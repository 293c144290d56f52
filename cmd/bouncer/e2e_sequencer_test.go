package main

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// printPublicKey runs serve --print-public-key on data and reads the key.
func printPublicKey(t *testing.T, data string) ed25519.PublicKey {
	t.Helper()
	code, out := run(t, "serve", "--data", data, "--print-public-key")
	require.Equal(t, 0, code, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	pub, err := sequencer.ParsePublicKey(lines[0])
	require.NoError(t, err, out)
	require.Contains(t, out, "key id "+sequencer.IDOf(pub).String())
	return pub
}

var lockEnvRE = regexp.MustCompile(`seq=(\S*) token=(\d+)`)

// TestE2ELockExportsSequencer: lock gives CMD the lock's sequencer, which
// verifies against the key serve --print-public-key prints for the same
// data directory, and names the lock CMD holds.
func TestE2ELockExportsSequencer(t *testing.T) {
	data := t.TempDir()
	pub := printPublicKey(t, data) // makes the key before the node starts
	p := startNode(t, data, "127.0.0.1:0")
	code, out := run(t, "lock", "--addr", p.addr, "--mode", "PW", "demo", "--", "sh", "-c",
		"echo seq=$BOUNCER_SEQUENCER token=$BOUNCER_TOKEN")
	require.Equal(t, 0, code, out)
	m := lockEnvRE.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	seq, err := sequencer.Verify(m[1], []ed25519.PublicKey{pub})
	require.NoError(t, err, out)
	token, err := strconv.ParseUint(m[2], 10, 64)
	require.NoError(t, err)
	require.Equal(t, "demo", seq.Resource)
	require.Equal(t, spec.PW, seq.Mode)
	require.Equal(t, spec.Token(token), seq.Token)
	require.Equal(t, pub, printPublicKey(t, data), "the node kept its key")
}

// TestE2ESequencerKeyFile: the first start makes the key, readable by its
// owner only, and later starts keep it; a key others may read, and a file
// that is not a key, stop serve with what to do.
func TestE2ESequencerKeyFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "fresh") // serve makes the directory
	pub := printPublicKey(t, data)
	path := filepath.Join(data, sequencerKeyFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, pub, printPublicKey(t, data), "the same key on the next start")

	serve := func() (int, string) {
		return run(t, "serve", "--data", data, "--listen", "127.0.0.1:0", "--metrics", "")
	}
	require.NoError(t, os.Chmod(path, 0o640))
	code, out := serve()
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "chmod 600")

	require.NoError(t, os.WriteFile(path, []byte("not a key\n"), 0o600))
	require.NoError(t, os.Chmod(path, 0o600))
	code, out = serve()
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "not a PEM block")
	require.Contains(t, out, "move it away")
}
