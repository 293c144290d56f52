package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sequencerKeyFile is the node's sequencer key in its data directory: an
// Ed25519 private key, PKCS #8 in PEM, mode 0600. It signs the node's
// sequencers and keys its session tags; losing it makes every sequencer
// signed before unverifiable (their holders ask for new ones).
const sequencerKeyFile = "sequencer-key.pem"

// sequencerKeyBytesMax bounds the key file read: a PEM Ed25519 key is
// about 120 bytes.
const sequencerKeyBytesMax = 4096

// loadSequencerKey reads the node's sequencer key from the data directory
// dir, making one on first start (created is then true). It refuses a key
// file that others may read, or that is not one Ed25519 key, with a
// message that says what to do.
func loadSequencerKey(dir string) (key ed25519.PrivateKey, path string, created bool, err error) {
	path = filepath.Join(dir, sequencerKeyFile)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = makeSequencerKey(dir, path)
		return key, path, err == nil, err
	}
	if err != nil {
		return nil, path, false, fmt.Errorf("sequencer key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, path, false, fmt.Errorf("sequencer key: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, path, false, fmt.Errorf("sequencer key: %s may be read by its group or others (mode %04o): chmod 600 it (and make a new key if others may have read it)", path, perm)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, path, false, fmt.Errorf("sequencer key: cannot read it: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, sequencerKeyBytesMax+1))
	if err != nil {
		return nil, path, false, fmt.Errorf("sequencer key: cannot read it: %w", err)
	}
	key, err = parseSequencerKey(b)
	if err != nil {
		return nil, path, false, fmt.Errorf("sequencer key: %s: %w; move it away to make a new key (sequencers signed with the old one will not verify)", path, err)
	}
	return key, path, false, nil
}

// parseSequencerKey reads one Ed25519 private key, PKCS #8 in PEM, with
// nothing after it but white space.
func parseSequencerKey(b []byte) (ed25519.PrivateKey, error) {
	if len(b) > sequencerKeyBytesMax {
		return nil, fmt.Errorf("over %d bytes: not a key file", sequencerKeyBytesMax)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM block of type PRIVATE KEY")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("more than one PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return key, nil
}

// makeSequencerKey writes a new key to path, atomically (a temporary file,
// synced, renamed, the directory synced), readable by the owner only.
func makeSequencerKey(dir, path string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sequencer key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sequencer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sequencer key: %w", err)
	}
	tmp, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sequencer key: %w", err)
	}
	err = tmp.Chmod(0o600) // a leftover temporary file keeps its mode otherwise
	if err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("sequencer key: %w", err)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
