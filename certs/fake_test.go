package certs

import (
	"context"
	"strconv"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeAPI is a hand-written stand-in for the two API resources the self-managed source touches. Like the
// API server, it rejects writes whose resourceVersion is stale.
type fakeAPI struct {
	mu        sync.Mutex
	rv        int
	secret    *corev1.Secret
	webhook   *admissionregistrationv1.MutatingWebhookConfiguration
	writes    int
	conflicts int
}

func newFakeAPI(webhooks ...string) *fakeAPI {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "sparkplace", ResourceVersion: "1"}}
	for _, w := range webhooks {
		cfg.Webhooks = append(cfg.Webhooks, admissionregistrationv1.MutatingWebhook{Name: w})
	}
	return &fakeAPI{rv: 1, webhook: cfg}
}

func (f *fakeAPI) nextRV() string { f.rv++; return strconv.Itoa(f.rv) }

func (f *fakeAPI) secrets() SecretClient               { return fakeSecrets{f} }
func (f *fakeAPI) webhookConfigs() WebhookConfigClient { return fakeWebhooks{f} }

// bundle is the caBundle of the first webhook, as the API server would use it.
func (f *fakeAPI) bundle() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.webhook.Webhooks[0].ClientConfig.CABundle
}

type fakeSecrets struct{ f *fakeAPI }

var secretsGR = schema.GroupResource{Resource: "secrets"}

func (s fakeSecrets) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Secret, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.secret == nil || s.f.secret.Name != name {
		return nil, apierrors.NewNotFound(secretsGR, name)
	}
	return s.f.secret.DeepCopy(), nil
}

func (s fakeSecrets) Create(_ context.Context, secret *corev1.Secret, _ metav1.CreateOptions) (*corev1.Secret, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.secret != nil {
		s.f.conflicts++
		return nil, apierrors.NewAlreadyExists(secretsGR, secret.Name)
	}
	s.f.writes++
	s.f.secret = secret.DeepCopy()
	s.f.secret.ResourceVersion = s.f.nextRV()
	return s.f.secret.DeepCopy(), nil
}

func (s fakeSecrets) Update(_ context.Context, secret *corev1.Secret, _ metav1.UpdateOptions) (*corev1.Secret, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.secret == nil || secret.ResourceVersion != s.f.secret.ResourceVersion {
		s.f.conflicts++
		return nil, apierrors.NewConflict(secretsGR, secret.Name, nil)
	}
	s.f.writes++
	s.f.secret = secret.DeepCopy()
	s.f.secret.ResourceVersion = s.f.nextRV()
	return s.f.secret.DeepCopy(), nil
}

type fakeWebhooks struct{ f *fakeAPI }

func (w fakeWebhooks) Get(_ context.Context, name string, _ metav1.GetOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if w.f.webhook.Name != name {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "mutatingwebhookconfigurations"}, name)
	}
	return w.f.webhook.DeepCopy(), nil
}

func (w fakeWebhooks) Update(_ context.Context, cfg *admissionregistrationv1.MutatingWebhookConfiguration, _ metav1.UpdateOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if cfg.ResourceVersion != w.f.webhook.ResourceVersion {
		w.f.conflicts++
		return nil, apierrors.NewConflict(schema.GroupResource{Resource: "mutatingwebhookconfigurations"}, cfg.Name, nil)
	}
	w.f.webhook = cfg.DeepCopy()
	w.f.webhook.ResourceVersion = w.f.nextRV()
	return w.f.webhook.DeepCopy(), nil
}

// fakeClock is a settable clock; sources read it through Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
