package certs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func writeKeyPair(t *testing.T, dir string, ca, serving *keyPair) {
	t.Helper()
	for name, b := range map[string][]byte{"ca.crt": ca.certPEM, "tls.crt": serving.certPEM, "tls.key": serving.keyPEM} {
		// write then rename, like the kubelet's atomic update of a mounted Secret
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileSource(t *testing.T) {
	now := time.Now()
	ca, err := newCA(now, day)
	if err != nil {
		t.Fatal(err)
	}
	first, err := newServing(now, time.Hour, ca, []string{"sparkplace.sparkplace.svc"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeKeyPair(t, dir, ca, first)
	clock := &fakeClock{now: now}
	src, err := NewFileSource(FileOptions{
		CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), CAFile: filepath.Join(dir, "ca.crt"),
		PollInterval: 20 * time.Millisecond, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Ready(); err != nil {
		t.Fatalf("not ready with valid files: %v", err)
	}
	if got := src.Expiry(); !got[CertServing].Equal(first.cert.NotAfter) || !got[CertCA].Equal(ca.cert.NotAfter) {
		t.Errorf("expiry = %v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx) }()

	second, err := newServing(now, 2*time.Hour, ca, []string{"sparkplace.sparkplace.svc"})
	if err != nil {
		t.Fatal(err)
	}
	writeKeyPair(t, dir, ca, second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _ := src.GetCertificate(nil)
		if c != nil && c.Leaf.Equal(second.cert) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rewritten certificate was not reloaded within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	clock.Set(now.Add(3 * time.Hour))
	if err := src.Ready(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Ready() = %v with an expired certificate, want an expiry error", err)
	}
	if err := ReadyCheck(src)(nil); err == nil {
		t.Error("the readiness check passes with an expired certificate")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v after cancel", err)
	}
}

func TestFileSourceMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewFileSource(FileOptions{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}); err == nil {
		t.Error("NewFileSource accepted missing files")
	}
}

func TestCollector(t *testing.T) {
	f := newFakeAPI("spark-pods.sparkplace.io")
	clock := &fakeClock{now: t0}
	s := newTestSource(t, f, clock, nil)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(s)); err != nil {
		t.Fatal(err)
	}
	gather := func() map[string]float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, fam := range families {
			for _, m := range fam.GetMetric() {
				got[fam.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return got
	}
	if got := gather(); len(got) != 0 {
		t.Errorf("series before any certificate is loaded: %v", got)
	}
	mustSync(t, s)
	want := map[string]float64{
		"sparkplace_certificate_expiry_timestamp_seconds/ca":      float64(t0.Add(30 * day).Unix()),
		"sparkplace_certificate_expiry_timestamp_seconds/serving": float64(t0.Add(9 * day).Unix()),
	}
	if diff := cmp.Diff(want, gather()); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
