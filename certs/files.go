package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// FileOptions configures a FileSource.
type FileOptions struct {
	// CertFile is the PEM serving certificate, tls.crt of a mounted Secret. Required.
	CertFile string
	// KeyFile is the PEM private key, tls.key of a mounted Secret. Required.
	KeyFile string
	// CAFile is the PEM CA certificate (ca.crt of a cert-manager Secret), read only to export its expiry.
	// Optional: without it no "ca" expiry is reported.
	CAFile string
	// PollInterval is how often the files are re-read in addition to file-system notifications, which miss
	// some atomic swaps of mounted Secrets. Defaults to 10s.
	PollInterval time.Duration
	// Now is the clock used to decide whether the loaded certificate is still valid. Defaults to time.Now.
	Now func() time.Time
}

// FileSource serves the certificate from files and reloads it when they change, using controller-runtime's
// certwatcher. It is the cert-manager mode: cert-manager renews the Secret, the kubelet updates the mounted
// files, cainjector updates the webhook configuration's caBundle.
type FileSource struct {
	opts    FileOptions
	watcher *certwatcher.CertWatcher
}

var _ Source = &FileSource{}

// NewFileSource reads the files once and fails if they do not hold a valid key pair.
func NewFileSource(opts FileOptions) (*FileSource, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("certificate and key files are required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w, err := certwatcher.New(opts.CertFile, opts.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", opts.CertFile, err)
	}
	return &FileSource{opts: opts, watcher: w.WithWatchInterval(opts.PollInterval)}, nil
}

// GetCertificate implements Source.
func (f *FileSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.watcher.GetCertificate(hello)
}

// Start implements Source.
func (f *FileSource) Start(ctx context.Context) error {
	if err := f.watcher.Start(ctx); err != nil {
		return fmt.Errorf("watching %s: %w", f.opts.CertFile, err)
	}
	return nil
}

// NeedLeaderElection tells controller-runtime's manager to run the source on every replica.
func (f *FileSource) NeedLeaderElection() bool { return false }

// Ready implements Source.
func (f *FileSource) Ready() error {
	c, _ := f.watcher.GetCertificate(nil)
	return validNow(c, f.opts.Now())
}

// Expiry implements Source.
func (f *FileSource) Expiry() map[string]time.Time {
	out := map[string]time.Time{}
	if c, _ := f.watcher.GetCertificate(nil); c != nil && c.Leaf != nil {
		out[CertServing] = c.Leaf.NotAfter
	}
	if f.opts.CAFile == "" {
		return out
	}
	b, err := os.ReadFile(f.opts.CAFile)
	if err != nil {
		return out
	}
	if cas, err := parseCerts(b); err == nil && len(cas) > 0 {
		out[CertCA] = cas[0].NotAfter
	}
	return out
}

// validNow returns nil when c holds a leaf certificate valid at now.
func validNow(c *tls.Certificate, now time.Time) error {
	switch {
	case c == nil || c.Leaf == nil:
		return errors.New("no serving certificate loaded")
	case now.Before(c.Leaf.NotBefore):
		return fmt.Errorf("serving certificate not valid before %s", c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(c.Leaf.NotAfter):
		return fmt.Errorf("serving certificate expired at %s", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
