package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Keys of the Secret the self-managed source keeps. tls.crt, tls.key and ca.crt follow the kubernetes.io/tls
// and cert-manager conventions, so the Secret can also be mounted and read by other tools.
const (
	keyServingCert = "tls.crt"
	keyServingKey  = "tls.key"
	keyCACert      = "ca.crt"
	keyCAKey       = "ca.key"
	keyNextCACert  = "next-ca.crt"
	keyNextCAKey   = "next-ca.key"
	keyBundle      = "ca-bundle.crt"
	// annotationNextCAPublished records when the staged CA was first seen in every webhook's caBundle; the
	// staged CA signs nothing until PropagationDelay after that.
	annotationNextCAPublished = "sparkplace.io/next-ca-published-at"
)

// retryAfterError is how long the source waits after a failed sync before trying again; short, because a
// replica without a certificate is not ready.
const retryAfterError = time.Second

// SecretClient is the part of the Secrets API the self-managed source uses; client-go's
// CoreV1().Secrets(namespace) satisfies it.
type SecretClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error)
	Create(ctx context.Context, secret *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error)
	Update(ctx context.Context, secret *corev1.Secret, opts metav1.UpdateOptions) (*corev1.Secret, error)
}

// WebhookConfigClient is the part of the MutatingWebhookConfigurations API the self-managed source uses;
// client-go's AdmissionregistrationV1().MutatingWebhookConfigurations() satisfies it.
type WebhookConfigClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, error)
	Update(ctx context.Context, cfg *admissionregistrationv1.MutatingWebhookConfiguration, opts metav1.UpdateOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, error)
}

// SelfManagedOptions configures a SelfManaged source.
type SelfManagedOptions struct {
	// Secrets reads and writes the Secret in ServiceNamespace. Required.
	Secrets SecretClient
	// Webhooks reads and updates the webhook configuration named WebhookConfigName. Required when
	// WebhookConfigName is set.
	Webhooks WebhookConfigClient
	// SecretName is the Secret holding the CA, the serving certificate and the CA bundle.
	// Defaults to "sparkplace-webhook-tls".
	SecretName string
	// ServiceName and ServiceNamespace name the webhook's Service; the serving certificate carries its DNS
	// names (svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local). Both required.
	ServiceName, ServiceNamespace string
	// ExtraHosts are further DNS names or IP addresses for the serving certificate, e.g. 127.0.0.1 when the
	// API server calls the webhook by URL in tests. Optional.
	ExtraHosts []string
	// WebhookConfigName is the MutatingWebhookConfiguration whose webhooks all get the CA bundle. Empty
	// disables writing it (the bundle is then only in the Secret's ca-bundle.crt).
	WebhookConfigName string
	// CALifetime is how long a new CA is valid. Defaults to 365 days; must exceed 3×PropagationDelay.
	CALifetime time.Duration
	// ServingLifetime is how long a new serving certificate is valid; it is cut short to the signing CA's
	// expiry. Defaults to 90 days.
	ServingLifetime time.Duration
	// RenewFraction is the fraction of a certificate's lifetime after which it is renewed (for the CA: a new
	// CA is staged in the bundle). Defaults to 2/3; must be in (0, 1).
	RenewFraction float64
	// PropagationDelay is how long a new CA stays in the webhook configuration's caBundle before it signs
	// serving certificates, so that every API server has seen the new bundle first. Defaults to 1m.
	PropagationDelay time.Duration
	// ResyncInterval is how often each replica re-reads the Secret and the webhook configuration even when
	// no renewal is due; it bounds how long a replica serves a certificate another replica replaced.
	// Defaults to 1m.
	ResyncInterval time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Log receives renewals, rotations and errors. Defaults to the logger in Start's context, else none.
	Log logr.Logger
}

// SelfManaged is a Source that maintains its own CA and serving certificate in a Secret.
//
// Every replica runs the same loop: read the Secret and the webhook configuration, compute what they should
// hold now, write the difference with the resourceVersion just read (a conflict means another replica made
// the change first, so the loop re-reads), then load the serving certificate from the Secret.
//
// CA rotation happens in three steps, each a separate write, so no request ever meets an untrusted
// certificate: at RenewFraction of the CA's lifetime a new CA is staged (added to the bundle, signing
// nothing); once every webhook's caBundle holds it, that time is recorded; PropagationDelay later the new CA
// becomes the signer and a new serving certificate is issued. The old CA stays in the bundle until it
// expires, which is no earlier than the last certificate it signed.
type SelfManaged struct {
	opts  SelfManagedOptions
	hosts []string

	mu      sync.RWMutex
	serving *tls.Certificate
	ca      *x509.Certificate
	trusted bool // whether the webhook configuration trusts ca
}

var _ Source = &SelfManaged{}

// NewSelfManaged validates opts and fills in defaults. It does not touch the API; Start does.
func NewSelfManaged(opts SelfManagedOptions) (*SelfManaged, error) {
	if opts.SecretName == "" {
		opts.SecretName = "sparkplace-webhook-tls"
	}
	if opts.CALifetime == 0 {
		opts.CALifetime = 365 * 24 * time.Hour
	}
	if opts.ServingLifetime == 0 {
		opts.ServingLifetime = 90 * 24 * time.Hour
	}
	if opts.RenewFraction == 0 {
		opts.RenewFraction = 2.0 / 3
	}
	if opts.PropagationDelay == 0 {
		opts.PropagationDelay = time.Minute
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.Secrets == nil:
		return nil, errors.New("a Secret client is required")
	case opts.WebhookConfigName != "" && opts.Webhooks == nil:
		return nil, errors.New("a webhook configuration client is required with a webhook configuration name")
	case opts.ServiceName == "" || opts.ServiceNamespace == "":
		return nil, errors.New("service name and namespace are required")
	case opts.RenewFraction <= 0 || opts.RenewFraction >= 1:
		return nil, fmt.Errorf("renew fraction %v is not in (0, 1)", opts.RenewFraction)
	case opts.ServingLifetime < 0 || opts.PropagationDelay < 0 || opts.ResyncInterval < 0:
		return nil, errors.New("lifetimes and intervals must be positive")
	case opts.CALifetime <= 3*opts.PropagationDelay:
		return nil, fmt.Errorf("CA lifetime %s must exceed 3×propagation delay %s", opts.CALifetime, opts.PropagationDelay)
	}
	svc, ns := opts.ServiceName, opts.ServiceNamespace
	hosts := []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"}
	hosts = append(hosts, opts.ExtraHosts...)
	return &SelfManaged{opts: opts, hosts: hosts}, nil
}

// GetCertificate implements Source.
func (s *SelfManaged) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.serving == nil {
		return nil, errors.New("no serving certificate loaded yet")
	}
	return s.serving, nil
}

// Ready implements Source: a certificate valid now is loaded and, when a webhook configuration is managed,
// its CA is in that configuration's caBundle.
func (s *SelfManaged) Ready() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := validNow(s.serving, s.opts.Now()); err != nil {
		return err
	}
	if s.opts.WebhookConfigName != "" && !s.trusted {
		return fmt.Errorf("CA not yet in the caBundle of %s", s.opts.WebhookConfigName)
	}
	return nil
}

// Expiry implements Source.
func (s *SelfManaged) Expiry() map[string]time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]time.Time{}
	if s.serving != nil {
		out[CertServing] = s.serving.Leaf.NotAfter
	}
	if s.ca != nil {
		out[CertCA] = s.ca.NotAfter
	}
	return out
}

// NeedLeaderElection tells controller-runtime's manager to run the source on every replica: all of them
// serve, and optimistic concurrency on the Secret picks the one writer for each change.
func (s *SelfManaged) NeedLeaderElection() bool { return false }

// Start implements Source.
func (s *SelfManaged) Start(ctx context.Context) error {
	log := s.opts.Log
	if log.GetSink() == nil {
		log = logr.FromContextOrDiscard(ctx)
	}
	log = log.WithValues("secret", s.opts.ServiceNamespace+"/"+s.opts.SecretName)
	ctx = logr.NewContext(ctx, log)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait, err := s.sync(ctx)
		if err != nil {
			log.Error(err, "syncing certificates", "retryIn", retryAfterError)
			wait = retryAfterError
		}
		timer.Reset(wait)
	}
}

// sync runs one pass of the loop and returns how long to wait before the next one.
func (s *SelfManaged) sync(ctx context.Context) (time.Duration, error) {
	log := logr.FromContextOrDiscard(ctx)
	now := s.opts.Now()

	secret, err := s.opts.Secrets.Get(ctx, s.opts.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret = nil
	} else if err != nil {
		return 0, fmt.Errorf("reading Secret: %w", err)
	}
	var webhookCfg *admissionregistrationv1.MutatingWebhookConfiguration
	if s.opts.WebhookConfigName != "" {
		webhookCfg, err = s.opts.Webhooks.Get(ctx, s.opts.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			return 0, fmt.Errorf("reading webhook configuration: %w", err)
		}
	}

	st := parseState(secret)
	want, reasons, err := s.plan(st, now)
	if err != nil {
		return 0, err
	}
	if len(reasons) > 0 {
		secret, err = s.writeSecret(ctx, secret, want)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			log.V(1).Info("another replica changed the Secret first; re-reading")
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("writing Secret (%v): %w", reasons, err)
		}
		log.Info("updated certificates", "reasons", reasons, "servingNotAfter", want.serving.cert.NotAfter, "caNotAfter", want.ca.cert.NotAfter)
	}

	trusted := func(*x509.Certificate) bool { return true }
	if webhookCfg != nil {
		changed, err := s.publishBundle(ctx, webhookCfg, want.bundle, now)
		if apierrors.IsConflict(err) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("writing caBundle of %s: %w", s.opts.WebhookConfigName, err)
		}
		if changed {
			log.Info("updated caBundle", "webhookConfiguration", s.opts.WebhookConfigName, "cas", len(want.bundle))
		}
		trusted = func(c *x509.Certificate) bool { return allTrust(webhookCfg, c) }
	}
	s.load(want, trusted(want.ca.cert))

	if want.next != nil && want.nextPublished.IsZero() && trusted(want.next.cert) {
		want.nextPublished = now
		if _, err := s.writeSecret(ctx, secret, want); apierrors.IsConflict(err) {
			return 0, nil
		} else if err != nil {
			return 0, fmt.Errorf("recording that the new CA is published: %w", err)
		}
		log.Info("new CA is in every caBundle; it signs from", "time", now.Add(s.opts.PropagationDelay))
	}
	return s.nextWake(want, now), nil
}

// plan computes what the Secret should hold at now, and why it differs from st (no reasons: no change).
func (s *SelfManaged) plan(st state, now time.Time) (state, []string, error) {
	var reasons []string
	var err error
	if st.next != nil && !now.Before(st.next.cert.NotAfter) {
		st.next, st.nextPublished = nil, time.Time{}
		reasons = append(reasons, "staged CA expired")
	}
	switch {
	case st.ca == nil || !now.Before(st.ca.cert.NotAfter):
		if st.next != nil {
			st.ca, st.next, st.nextPublished = st.next, nil, time.Time{}
			reasons = append(reasons, "CA expired: promoted the staged CA early")
			break
		}
		if st.ca, err = newCA(now, s.opts.CALifetime); err != nil {
			return st, nil, err
		}
		reasons = append(reasons, "no valid CA: created one")
	case st.next != nil && !st.nextPublished.IsZero() && !now.Before(st.nextPublished.Add(s.opts.PropagationDelay)):
		st.ca, st.next, st.nextPublished = st.next, nil, time.Time{}
		reasons = append(reasons, "promoted the staged CA")
	case st.next == nil && !now.Before(renewalTime(st.ca.cert, s.opts.RenewFraction)):
		if st.next, err = newCA(now, s.opts.CALifetime); err != nil {
			return st, nil, err
		}
		st.nextPublished = time.Time{}
		reasons = append(reasons, "CA due for renewal: staged a new CA")
	}

	if why := s.servingStale(st, now); why != "" {
		if st.serving, err = newServing(now, s.opts.ServingLifetime, st.ca, s.hosts); err != nil {
			return st, nil, err
		}
		reasons = append(reasons, why)
	}

	var staged []*x509.Certificate
	if st.next != nil {
		staged = append(staged, st.next.cert)
	}
	bundle := mergeBundle(now, st.bundle, []*x509.Certificate{st.ca.cert}, staged)
	if !bytes.Equal(encodeCerts(bundle), encodeCerts(st.bundle)) {
		reasons = append(reasons, "CA bundle changed")
	}
	st.bundle = bundle
	return st, reasons, nil
}

// servingStale says why st's serving certificate must be reissued, or "" when it need not be.
func (s *SelfManaged) servingStale(st state, now time.Time) string {
	switch {
	case st.serving == nil:
		return "no serving certificate"
	case !signedBy(st.serving.cert, st.ca.cert, now):
		return "serving certificate not signed by the current CA or not valid now"
	case !hasHosts(st.serving.cert, s.hosts):
		return "serving certificate names changed"
	case !now.Before(renewalTime(st.serving.cert, s.opts.RenewFraction)):
		return "serving certificate due for renewal"
	}
	return ""
}

// nextWake is how long until the next renewal step is due, at most ResyncInterval.
func (s *SelfManaged) nextWake(st state, now time.Time) time.Duration {
	due := []time.Time{now.Add(s.opts.ResyncInterval), renewalTime(st.serving.cert, s.opts.RenewFraction), st.ca.cert.NotAfter}
	switch {
	case st.next == nil:
		due = append(due, renewalTime(st.ca.cert, s.opts.RenewFraction))
	case !st.nextPublished.IsZero():
		due = append(due, st.nextPublished.Add(s.opts.PropagationDelay))
	}
	for _, c := range st.bundle {
		due = append(due, c.NotAfter) // prune expired CAs promptly
	}
	wake := due[0]
	for _, d := range due[1:] {
		if d.Before(wake) {
			wake = d
		}
	}
	// A few milliseconds late rather than early: the due checks compare with a fresh clock reading.
	return max(wake.Sub(now), 0) + 10*time.Millisecond
}

// writeSecret creates the Secret or updates it with the resourceVersion it was read at.
func (s *SelfManaged) writeSecret(ctx context.Context, current *corev1.Secret, st state) (*corev1.Secret, error) {
	if current == nil {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      s.opts.SecretName,
				Namespace: s.opts.ServiceNamespace,
				Labels:    map[string]string{"app.kubernetes.io/name": "sparkplace", "app.kubernetes.io/component": "webhook-certificates"},
			},
			Type: corev1.SecretTypeTLS,
		}
		st.encodeInto(secret)
		return s.opts.Secrets.Create(ctx, secret, metav1.CreateOptions{})
	}
	secret := current.DeepCopy()
	st.encodeInto(secret)
	return s.opts.Secrets.Update(ctx, secret, metav1.UpdateOptions{})
}

// publishBundle makes every webhook's caBundle the union of what it holds and bundle, without expired CAs.
// The union, rather than a replacement, keeps a replica that read an older Secret from removing a CA
// another replica just staged.
func (s *SelfManaged) publishBundle(ctx context.Context, cfg *admissionregistrationv1.MutatingWebhookConfiguration, bundle []*x509.Certificate, now time.Time) (bool, error) {
	updated := cfg.DeepCopy()
	changed := false
	for i := range updated.Webhooks {
		cc := &updated.Webhooks[i].ClientConfig
		existing, err := parseCerts(cc.CABundle)
		if err != nil {
			existing = nil // unreadable: replace it
		}
		merged := encodeCerts(mergeBundle(now, existing, bundle))
		if !bytes.Equal(merged, cc.CABundle) {
			cc.CABundle = merged
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	out, err := s.opts.Webhooks.Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return false, err
	}
	*cfg = *out
	return true, nil
}

// allTrust reports whether every webhook of cfg has c in its caBundle.
func allTrust(cfg *admissionregistrationv1.MutatingWebhookConfiguration, c *x509.Certificate) bool {
	for _, w := range cfg.Webhooks {
		bundle, err := parseCerts(w.ClientConfig.CABundle)
		if err != nil || !containsCert(bundle, c) {
			return false
		}
	}
	return true
}

// load makes st's serving certificate the one GetCertificate returns.
func (s *SelfManaged) load(st state, trusted bool) {
	cert := &tls.Certificate{Certificate: [][]byte{st.serving.cert.Raw}, PrivateKey: st.serving.key, Leaf: st.serving.cert}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving, s.ca, s.trusted = cert, st.ca.cert, trusted
}

// state is the parsed content of the Secret. Unreadable parts are nil and get replaced.
type state struct {
	ca, next, serving *keyPair
	nextPublished     time.Time
	bundle            []*x509.Certificate
}

func parseState(secret *corev1.Secret) state {
	var st state
	if secret == nil {
		return st
	}
	d := secret.Data
	st.ca, _ = parseKeyPair(d[keyCACert], d[keyCAKey])
	st.next, _ = parseKeyPair(d[keyNextCACert], d[keyNextCAKey])
	st.serving, _ = parseKeyPair(d[keyServingCert], d[keyServingKey])
	st.bundle, _ = parseCerts(d[keyBundle])
	if st.next != nil {
		st.nextPublished, _ = time.Parse(time.RFC3339Nano, secret.Annotations[annotationNextCAPublished])
	}
	return st
}

// encodeInto writes st into secret's data and annotations, leaving unrelated keys alone.
func (st state) encodeInto(secret *corev1.Secret) {
	data := maps.Clone(secret.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	data[keyCACert], data[keyCAKey] = st.ca.certPEM, st.ca.keyPEM
	data[keyServingCert], data[keyServingKey] = st.serving.certPEM, st.serving.keyPEM
	data[keyBundle] = encodeCerts(st.bundle)
	delete(data, keyNextCACert)
	delete(data, keyNextCAKey)
	if st.next != nil {
		data[keyNextCACert], data[keyNextCAKey] = st.next.certPEM, st.next.keyPEM
	}
	secret.Data = data

	annotations := maps.Clone(secret.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, annotationNextCAPublished)
	if st.next != nil && !st.nextPublished.IsZero() {
		annotations[annotationNextCAPublished] = st.nextPublished.UTC().Format(time.RFC3339Nano)
	}
	secret.Annotations = annotations
}
