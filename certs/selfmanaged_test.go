package certs

import (
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const day = 24 * time.Hour

func newTestSource(t *testing.T, f *fakeAPI, clock *fakeClock, mutate func(*SelfManagedOptions)) *SelfManaged {
	t.Helper()
	opts := SelfManagedOptions{
		Secrets:           f.secrets(),
		Webhooks:          f.webhookConfigs(),
		ServiceName:       "sparkplace",
		ServiceNamespace:  "sparkplace",
		ExtraHosts:        []string{"127.0.0.1"},
		WebhookConfigName: "sparkplace",
		CALifetime:        30 * day,
		ServingLifetime:   9 * day,
		PropagationDelay:  time.Hour,
		Now:               clock.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := NewSelfManaged(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSync(t *testing.T, s *SelfManaged) {
	t.Helper()
	if _, err := s.sync(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// servingIssuer is the CA among cas that signed s's current certificate, or nil.
func servingIssuer(s *SelfManaged, cas ...*x509.Certificate) *x509.Certificate {
	c, _ := s.GetCertificate(nil)
	for _, ca := range cas {
		if c != nil && c.Leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// verifies reports whether s's current certificate verifies for its Service name against bundle at now.
func verifies(s *SelfManaged, bundle []byte, now time.Time) error {
	c, err := s.GetCertificate(nil)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	_, err = c.Leaf.Verify(x509.VerifyOptions{DNSName: "sparkplace.sparkplace.svc", Roots: roots, CurrentTime: now})
	return err
}

func TestSelfManagedLifecycle(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io", "spark-pods-reinvoke.sparkplace.io")
	clock := &fakeClock{now: t0}
	s := newTestSource(t, f, clock, nil)

	if err := s.Ready(); err == nil {
		t.Fatal("ready before any certificate was loaded")
	}
	mustSync(t, s)
	if err := s.Ready(); err != nil {
		t.Fatalf("not ready after the first sync: %v", err)
	}
	ca1 := s.Expiry()
	first, _ := s.GetCertificate(nil)
	caCerts, _ := parseCerts(f.bundle())
	if len(caCerts) != 1 {
		t.Fatalf("caBundle holds %d CAs after bootstrap, want 1", len(caCerts))
	}
	oldCA := caCerts[0]
	for _, w := range f.webhook.Webhooks {
		if string(w.ClientConfig.CABundle) != string(f.bundle()) {
			t.Errorf("webhook %s has a different caBundle", w.Name)
		}
	}
	if got, want := ca1[CertServing], t0.Add(9*day); !got.Equal(want) {
		t.Errorf("serving expiry = %s, want %s", got, want)
	}

	steps := []struct {
		name        string
		at          time.Duration
		wantServing string // "same" or "new"
		wantCAs     int    // CAs in the webhook's caBundle
		wantSigner  string // "old" or "new" CA
	}{
		{name: "before the serving renewal point nothing changes", at: 6*day - time.Minute, wantServing: "same", wantCAs: 1, wantSigner: "old"},
		{name: "at 2/3 of its lifetime the serving certificate is renewed", at: 6*day + time.Second, wantServing: "new", wantCAs: 1, wantSigner: "old"},
		{name: "at 2/3 of the CA's lifetime a new CA is staged, signing nothing yet", at: 20*day + time.Second, wantServing: "new", wantCAs: 2, wantSigner: "old"},
		{name: "within the propagation delay the staged CA still signs nothing", at: 20*day + 30*time.Minute, wantServing: "same", wantCAs: 2, wantSigner: "old"},
		{name: "after the propagation delay the new CA signs a new serving certificate", at: 20*day + time.Hour + 2*time.Second, wantServing: "new", wantCAs: 2, wantSigner: "new"},
		{name: "both CAs stay trusted until the old one expires", at: 26 * day, wantServing: "same", wantCAs: 2, wantSigner: "new"},
		{name: "the old CA leaves the bundle when it expires", at: 30*day + time.Second, wantServing: "new", wantCAs: 1, wantSigner: "new"},
	}
	prev := first
	for _, step := range steps {
		clock.Set(t0.Add(step.at))
		mustSync(t, s)
		mustSync(t, s) // a second pass at the same instant must be a no-op
		cur, _ := s.GetCertificate(nil)
		if changed := !cur.Leaf.Equal(prev.Leaf); changed != (step.wantServing == "new") {
			t.Errorf("%s: serving certificate changed = %v", step.name, changed)
		}
		prev = cur
		bundle, _ := parseCerts(f.bundle())
		if len(bundle) != step.wantCAs {
			t.Errorf("%s: caBundle holds %d CAs, want %d", step.name, len(bundle), step.wantCAs)
		}
		signer := servingIssuer(s, bundle...)
		switch {
		case signer == nil:
			t.Errorf("%s: serving certificate not signed by a CA in the bundle", step.name)
		case (step.wantSigner == "old") != signer.Equal(oldCA):
			t.Errorf("%s: signed by %s, want the %s CA", step.name, signer.Subject.CommonName, step.wantSigner)
		}
		if err := verifies(s, f.bundle(), clock.Now()); err != nil {
			t.Errorf("%s: a client trusting the published bundle rejects the certificate: %v", step.name, err)
		}
		if err := s.Ready(); err != nil {
			t.Errorf("%s: not ready: %v", step.name, err)
		}
	}
	if got := s.Expiry()[CertCA]; !got.After(ca1[CertCA]) {
		t.Errorf("CA expiry %s did not move past the first CA's %s", got, ca1[CertCA])
	}
}

// TestRotationNeverUntrusted runs three replicas through several CA lifetimes in small steps. Two sync at
// every step, concurrently; one lags and syncs every fourth step. At every step, every replica's certificate
// must verify against the caBundle the webhook configuration holds now and the one it held half a
// propagation delay ago (an API server that has not caught up yet).
func TestRotationNeverUntrusted(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io")
	clock := &fakeClock{now: t0}
	opts := func(o *SelfManagedOptions) { o.CALifetime, o.ServingLifetime = 6*day, 2*day }
	replicas := []*SelfManaged{newTestSource(t, f, clock, opts), newTestSource(t, f, clock, opts), newTestSource(t, f, clock, opts)}
	const step = 15 * time.Minute
	type snapshot struct {
		at     time.Time
		bundle []byte
	}
	var history []snapshot
	cas, servings := map[string]bool{}, map[string]bool{}
	for i := 0; i*int(step) < int(20*day); i++ {
		now := t0.Add(time.Duration(i) * step)
		clock.Set(now)
		var wg sync.WaitGroup
		for r, s := range replicas {
			if r == 2 && i%4 != 0 {
				continue
			}
			wg.Go(func() {
				// a conflict returns nil and the real loop re-syncs at once; so does this one
				for range 3 {
					if _, err := s.sync(context.Background()); err != nil {
						t.Errorf("replica %d at %s: %v", r, now, err)
					}
				}
			})
		}
		wg.Wait()
		history = append(history, snapshot{at: now, bundle: f.bundle()})
		lagged := history[0]
		for _, h := range history {
			if !h.at.After(now.Add(-time.Hour / 2)) {
				lagged = h
			}
		}
		for r, s := range replicas {
			for _, b := range []snapshot{history[len(history)-1], lagged} {
				if err := verifies(s, b.bundle, now); err != nil {
					t.Fatalf("step %d (%s): replica %d's certificate is not trusted by the caBundle of %s: %v", i, now.Sub(t0), r, b.at.Sub(t0), err)
				}
			}
			c, _ := s.GetCertificate(nil)
			servings[string(c.Leaf.Raw)] = true
			cas[string(c.Leaf.AuthorityKeyId)] = true
		}
	}
	t.Logf("%d CAs and %d serving certificates used; %d writes, %d conflicts", len(cas), len(servings), f.writes, f.conflicts)
	if len(cas) < 4 {
		t.Errorf("%d CAs signed serving certificates in 20 days of 6-day CAs, want at least 4", len(cas))
	}
}

// TestStaleReplicaKeepsStagedCA: a replica that read the Secret before another staged a new CA must not
// remove that CA from the caBundle; it only adds and prunes expired CAs.
func TestStaleReplicaKeepsStagedCA(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io")
	clock := &fakeClock{now: t0}
	a := newTestSource(t, f, clock, nil)
	mustSync(t, a)
	staleBundle, _ := parseCerts(f.bundle())

	clock.Set(t0.Add(20*day + time.Second))
	mustSync(t, a)
	staged, _ := parseCerts(f.bundle())
	if len(staged) != 2 {
		t.Fatalf("caBundle holds %d CAs after staging, want 2", len(staged))
	}

	b := newTestSource(t, f, clock, nil)
	cfg, _ := f.webhookConfigs().Get(context.Background(), "sparkplace", metav1.GetOptions{})
	if _, err := b.publishBundle(context.Background(), cfg, staleBundle, clock.Now()); err != nil {
		t.Fatal(err)
	}
	after, _ := parseCerts(f.bundle())
	if !containsCert(after, staged[1]) {
		t.Error("a replica with a stale Secret removed the staged CA from the caBundle")
	}
}

// TestConcurrentBootstrap: replicas starting together create one CA between them and all serve it.
func TestConcurrentBootstrap(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io")
	clock := &fakeClock{now: t0}
	replicas := make([]*SelfManaged, 4)
	for i := range replicas {
		replicas[i] = newTestSource(t, f, clock, nil)
	}
	for range 2 { // the losers of a write race load on their next pass
		var wg sync.WaitGroup
		for _, s := range replicas {
			wg.Go(func() {
				if _, err := s.sync(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	bundle, _ := parseCerts(f.bundle())
	if len(bundle) != 1 {
		t.Errorf("caBundle holds %d CAs, want 1", len(bundle))
	}
	want, _ := replicas[0].GetCertificate(nil)
	for i, s := range replicas {
		got, err := s.GetCertificate(nil)
		if err != nil || !got.Leaf.Equal(want.Leaf) {
			t.Errorf("replica %d serves a different certificate (%v)", i, err)
		}
		if err := s.Ready(); err != nil {
			t.Errorf("replica %d not ready: %v", i, err)
		}
	}
	if f.writes != 1 {
		t.Errorf("%d Secret writes for one bootstrap, want 1", f.writes)
	}
}

func TestSelfManagedServiceNamesChange(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io")
	clock := &fakeClock{now: t0}
	mustSync(t, newTestSource(t, f, clock, nil))
	s := newTestSource(t, f, clock, func(o *SelfManagedOptions) { o.ExtraHosts = []string{"::1"} })
	mustSync(t, s)
	c, _ := s.GetCertificate(nil)
	if len(c.Leaf.IPAddresses) != 1 || c.Leaf.IPAddresses[0].String() != "::1" {
		t.Errorf("IP SANs = %v after the extra hosts changed, want [::1]", c.Leaf.IPAddresses)
	}
	if bundle, _ := parseCerts(f.bundle()); len(bundle) != 1 {
		t.Errorf("a name change rotated the CA: %d CAs in the bundle", len(bundle))
	}
}

func TestNewSelfManagedValidation(t *testing.T) {
	f := newFakeAPI()
	cases := map[string]func(*SelfManagedOptions){
		"no Secret client":                   func(o *SelfManagedOptions) { o.Secrets = nil },
		"webhook name without a client":      func(o *SelfManagedOptions) { o.Webhooks = nil },
		"no service name":                    func(o *SelfManagedOptions) { o.ServiceName = "" },
		"renew fraction of one":              func(o *SelfManagedOptions) { o.RenewFraction = 1 },
		"CA shorter than three propagations": func(o *SelfManagedOptions) { o.CALifetime = 2 * time.Hour },
		"negative serving lifetime":          func(o *SelfManagedOptions) { o.ServingLifetime = -time.Hour },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			opts := SelfManagedOptions{Secrets: f.secrets(), Webhooks: f.webhookConfigs(), ServiceName: "s", ServiceNamespace: "n", WebhookConfigName: "w", PropagationDelay: time.Hour}
			mutate(&opts)
			if _, err := NewSelfManaged(opts); err == nil {
				t.Error("NewSelfManaged accepted invalid options")
			}
		})
	}
}
