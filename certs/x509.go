package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// backdate is how far before "now" a certificate's NotBefore is set, so that an API server whose clock is
// slightly behind ours still accepts a certificate issued a moment ago. Renewal times are measured from the
// issue time (NotBefore + backdate), not from NotBefore.
const backdate = time.Minute

// keyPair is a parsed certificate with its private key and both PEM encodings.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCA creates a self-signed ECDSA P-256 CA valid for lifetime from now. The common name carries the issue
// time so that successive CAs are told apart in logs and by chain building.
func newCA(now time.Time, lifetime time.Duration) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("sparkplace-ca@%d", now.UnixNano()), Organization: []string{"sparkplace"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	return newKeyPair(der, key)
}

// newServing creates an ECDSA P-256 serving certificate for hosts (DNS names or IP addresses) signed by ca.
// It never outlives the CA that signed it: a certificate the bundle no longer trusts is useless.
func newServing(now time.Time, lifetime time.Duration, ca *keyPair, hosts []string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"sparkplace"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	return newKeyPair(der, key)
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

func newKeyPair(der []byte, key *ecdsa.PrivateKey) (*keyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate just signed: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// parseKeyPair parses a PEM certificate and its PEM ECDSA key and checks that they belong together.
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing key pair: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA", pair.PrivateKey)
	}
	return &keyPair{cert: pair.Leaf, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// parseCerts parses every CERTIFICATE block in a PEM bundle.
func parseCerts(bundle []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing bundle certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 && len(bytes.TrimSpace(bundle)) > 0 {
		return nil, errors.New("bundle holds no PEM certificate")
	}
	return certs, nil
}

// encodeCerts is the PEM bundle of certs, in order.
func encodeCerts(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writing to a bytes.Buffer never fails
	}
	return b.Bytes()
}

// mergeBundle is the union of the given certificate lists, first occurrence first, without duplicates and
// without certificates that expired before now. Keeping every unexpired CA is what makes a rotation safe:
// a replica that has not yet reloaded still serves a certificate signed by a CA in the bundle.
func mergeBundle(now time.Time, lists ...[]*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, l := range lists {
		for _, c := range l {
			if c == nil || !now.Before(c.NotAfter) {
				continue
			}
			if slices.ContainsFunc(out, func(o *x509.Certificate) bool { return o.Equal(c) }) {
				continue
			}
			out = append(out, c)
		}
	}
	return out
}

// containsCert reports whether bundle holds c.
func containsCert(bundle []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(bundle, func(o *x509.Certificate) bool { return o.Equal(c) })
}

// renewalTime is when a certificate is due for renewal: after fraction of its lifetime, measured from its
// issue time.
func renewalTime(c *x509.Certificate, fraction float64) time.Time {
	issued := c.NotBefore.Add(backdate)
	return issued.Add(time.Duration(float64(c.NotAfter.Sub(issued)) * fraction))
}

// hasHosts reports whether c carries exactly hosts as DNS and IP SANs.
func hasHosts(c *x509.Certificate, hosts []string) bool {
	var got []string
	got = append(got, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		got = append(got, ip.String())
	}
	want := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want = append(want, h)
	}
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// signedBy reports whether c verifies as a server certificate against ca alone at time now.
func signedBy(c, ca *x509.Certificate, now time.Time) bool {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}
