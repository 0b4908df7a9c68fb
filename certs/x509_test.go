package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNewCA(t *testing.T) {
	ca, err := newCA(t0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v BasicConstraintsValid=%v MaxPathLen=%d", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA key usage %b lacks certSign", c.KeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if got, want := c.NotAfter, t0.Add(365*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s", got, want)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("CA has no subject key id; chain building across rotations relies on it")
	}
}

func TestNewServing(t *testing.T) {
	ca, err := newCA(t0, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"sparkplace.sparkplace.svc", "sparkplace", "sparkplace.sparkplace", "sparkplace.sparkplace.svc.cluster.local", "127.0.0.1"}
	cases := map[string]struct {
		lifetime     time.Duration
		wantNotAfter time.Time
	}{
		"lifetime within the CA's":     {lifetime: 10 * 24 * time.Hour, wantNotAfter: t0.Add(10 * 24 * time.Hour)},
		"cut short to the CA's expiry": {lifetime: 90 * 24 * time.Hour, wantNotAfter: ca.cert.NotAfter},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := newServing(t0, tc.lifetime, ca, hosts)
			if err != nil {
				t.Fatal(err)
			}
			c := s.cert
			if !c.NotAfter.Equal(tc.wantNotAfter) {
				t.Errorf("NotAfter = %s, want %s", c.NotAfter, tc.wantNotAfter)
			}
			if c.IsCA {
				t.Error("serving certificate is a CA")
			}
			if c.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("key usage = %b, want digitalSignature only", c.KeyUsage)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, c.ExtKeyUsage); diff != "" {
				t.Errorf("extended key usage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(hosts[:4], c.DNSNames); diff != "" {
				t.Errorf("DNS SANs (-want +got):\n%s", diff)
			}
			if len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "127.0.0.1" {
				t.Errorf("IP SANs = %v, want [127.0.0.1]", c.IPAddresses)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.cert)
			for _, h := range hosts {
				if _, err := c.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: t0.Add(time.Hour)}); err != nil {
					t.Errorf("chain for %s does not verify: %v", h, err)
				}
			}
			if _, err := c.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: roots, CurrentTime: t0.Add(time.Hour)}); err == nil {
				t.Error("certificate verifies for a name it does not carry")
			}
			if !hasHosts(c, hosts) || hasHosts(c, hosts[:2]) {
				t.Error("hasHosts does not match the SANs exactly")
			}
			pair, err := parseKeyPair(s.certPEM, s.keyPEM)
			if err != nil {
				t.Fatalf("PEM round trip: %v", err)
			}
			if !pair.cert.Equal(c) {
				t.Error("PEM round trip changed the certificate")
			}
		})
	}
}

func TestRenewalTime(t *testing.T) {
	cases := map[string]struct {
		lifetime time.Duration
		fraction float64
		want     time.Duration
	}{
		"90 days at two thirds":  {lifetime: 90 * 24 * time.Hour, fraction: 2.0 / 3, want: 60 * 24 * time.Hour},
		"one year at two thirds": {lifetime: 360 * 24 * time.Hour, fraction: 2.0 / 3, want: 240 * 24 * time.Hour},
		"30 seconds at half":     {lifetime: 30 * time.Second, fraction: 0.5, want: 15 * time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ca, err := newCA(t0, tc.lifetime)
			if err != nil {
				t.Fatal(err)
			}
			got := renewalTime(ca.cert, tc.fraction).Sub(t0)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("renewal after %s, want %s (measured from issue time, not the backdated NotBefore)", got, tc.want)
			}
		})
	}
}

func TestMergeBundle(t *testing.T) {
	a, _ := newCA(t0, time.Hour)
	b, _ := newCA(t0, 2*time.Hour)
	c, _ := newCA(t0, 3*time.Hour)
	cases := map[string]struct {
		at    time.Time
		lists [][]*x509.Certificate
		want  []*x509.Certificate
	}{
		"union keeps first order, no duplicates": {
			at:    t0,
			lists: [][]*x509.Certificate{{a.cert, b.cert}, {b.cert, c.cert}},
			want:  []*x509.Certificate{a.cert, b.cert, c.cert},
		},
		"expired CAs are pruned": {
			at:    t0.Add(90 * time.Minute),
			lists: [][]*x509.Certificate{{a.cert, b.cert}, {c.cert}},
			want:  []*x509.Certificate{b.cert, c.cert},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := mergeBundle(tc.at, tc.lists...)
			if !cmp.Equal(encodeCerts(got), encodeCerts(tc.want)) {
				t.Errorf("got %d certificates, want %d", len(got), len(tc.want))
			}
			parsed, err := parseCerts(encodeCerts(got))
			if err != nil || len(parsed) != len(got) {
				t.Errorf("bundle PEM round trip: %d certificates, %v", len(parsed), err)
			}
		})
	}
}

// TestCertManagerNamesMatchSelfManaged: both modes put the same Service names in the serving certificate.
func TestCertManagerNamesMatchSelfManaged(t *testing.T) {
	objs, inject, err := CertManagerObjects(CertManagerOptions{Namespace: "ns", ServiceName: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	serving, ok := objs[len(objs)-1].(*cmv1.Certificate)
	if !ok {
		t.Fatalf("last object is %T, want the serving Certificate", objs[len(objs)-1])
	}
	s, err := NewSelfManaged(SelfManagedOptions{Secrets: newFakeAPI().secrets(), ServiceName: "svc", ServiceNamespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.hosts, serving.Spec.DNSNames); diff != "" {
		t.Errorf("DNS names (-self-managed +cert-manager):\n%s", diff)
	}
	if want := "ns/" + serving.Name; inject != want {
		t.Errorf("inject annotation %q, want %q", inject, want)
	}
	if serving.Spec.IsCA || serving.Spec.PrivateKey.Algorithm != cmv1.ECDSAKeyAlgorithm {
		t.Errorf("serving Certificate: isCA=%v algorithm=%s", serving.Spec.IsCA, serving.Spec.PrivateKey.Algorithm)
	}
}
