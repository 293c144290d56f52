package peer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
)

// testCA is a certificate authority made for one test: ECDSA P-256,
// valid for an hour.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a member's certificate, for 127.0.0.1, good as a server's
// and as a client's.
func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// memberTLS is a member's server and client TLS: its certificate from
// ca, peers verified against trust.
func memberTLS(cert tls.Certificate, trust *x509.CertPool) (server, client *tls.Config) {
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: trust,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: trust, MinVersion: tls.VersionTLS13}
	return server, client
}

func TestTLSClientCertificates(t *testing.T) {
	ca := newCA(t, "bouncer test cluster")
	rogue := newCA(t, "somebody else")
	ms := cluster(t, 2, func(c *Config) {
		c.ServerTLS, c.ClientTLS = memberTLS(ca.issue(t, "member"), ca.pool)
	})
	a, b := ms[0], ms[1]
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	b.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 2, 1, 1)})
	require.Equal(t, uint64(2), recvN(t, a.tr, 1)[0].GetFrom())
	require.Equal(t, uint64(1), recvN(t, b.tr, 1)[0].GetFrom())

	// Intruders claim to be member 1 (they know the cluster id and trust
	// the cluster's CA): one with a certificate of another CA, one with
	// none, one dialing in plaintext. Member 2 takes nothing from them.
	addrs := map[uint64]string{1: a.addr, 2: b.addr}
	rogueCert := rogue.issue(t, "intruder")
	for name, client := range map[string]*tls.Config{
		"rogue certificate": {Certificates: []tls.Certificate{rogueCert}, RootCAs: ca.pool, MinVersion: tls.VersionTLS13},
		"no certificate":    {RootCAs: ca.pool, MinVersion: tls.VersionTLS13},
		"plaintext":         nil,
	} {
		cfg := testConfig(1, addrs)
		cfg.ClientTLS = client
		in, err := New(cfg)
		require.NoError(t, err, name)
		for range 3 {
			in.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 99)})
			time.Sleep(20 * time.Millisecond)
		}
		report(t, in, unreachable(2))
		noRecv(t, b.tr, 100*time.Millisecond)
		require.NoError(t, in.Close())
	}

	// The members still talk.
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
	require.Equal(t, uint64(2), recvN(t, b.tr, 1)[0].GetIndex())
}
