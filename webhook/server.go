package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// ServerOptions configure Run.
type ServerOptions struct {
	RestConfig *rest.Config
	// Host and Port the webhook listens on. Port defaults to 9443.
	Host string
	Port int
	// GetCertificate returns the serving certificate for each TLS handshake; the certificate source behind
	// it keeps it current (file watcher, self-managed CA), so rotation needs no restart.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// CertificateReady fails while no valid serving certificate is loaded; readiness includes it.
	CertificateReady healthz.Checker
	// Runnables run beside the server for its lifetime (certificate sources, policy watchers).
	Runnables []manager.Runnable
	// MetricsBindAddress serves /metrics ("0" disables). HealthProbeBindAddress serves /healthz and /readyz.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	Engine                 Engine
	Metrics                *Metrics
	OnPolicyError          PolicyErrorMode
}

// Run serves the webhook until ctx is done.
func Run(ctx context.Context, o ServerOptions) error {
	if o.GetCertificate == nil {
		return errors.New("webhook server: no certificate source")
	}
	isDriver, err := labels.NewRequirement(LabelRole, selection.Equals, []string{RoleDriver})
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    o.Host,
			Port:    o.Port,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = o.GetCertificate }},
		}),
		Cache: cache.Options{
			// Only driver pods, stripped to what the zone lookup reads: memory does not grow with the
			// cluster's other pods. Nodes and namespaces are cached as metadata only.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Pod{}: {Label: labels.NewSelector().Add(*isDriver), Transform: stripDriverPod},
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	reader := mgr.GetCache()
	for _, obj := range []client.Object{&corev1.Pod{}, metadataOf("Node"), metadataOf("Namespace")} {
		if _, err := reader.GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("starting informer for %T: %w", obj, err)
		}
	}
	var synced atomic.Bool
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if reader.WaitForCacheSync(ctx) {
			synced.Store(true)
		}
		return nil
	})); err != nil {
		return err
	}
	for _, r := range o.Runnables {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	handler := &Handler{
		Placer:        &Placer{Engine: o.Engine, Cluster: ClusterState{Reader: reader}, Metrics: o.Metrics},
		Metrics:       o.Metrics,
		OnPolicyError: o.OnPolicyError,
	}
	server := mgr.GetWebhookServer()
	server.Register(Path, &admission.Webhook{Handler: handler, WithContextFunc: withLogger(mgr)})

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	ready := []struct {
		name  string
		check healthz.Checker
	}{
		{"webhook", server.StartedChecker()},
		{"cache", func(*http.Request) error {
			if !synced.Load() {
				return errors.New("informer caches not synced")
			}
			return nil
		}},
	}
	if o.CertificateReady != nil {
		ready = append(ready, struct {
			name  string
			check healthz.Checker
		}{"certificate", o.CertificateReady})
	}
	for _, r := range ready {
		if err := mgr.AddReadyzCheck(r.name, r.check); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

func withLogger(mgr manager.Manager) func(context.Context, *http.Request) context.Context {
	log := mgr.GetLogger().WithName("webhook")
	return func(ctx context.Context, _ *http.Request) context.Context { return ctrl.LoggerInto(ctx, log) }
}

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}

// stripDriverPod keeps what ClusterState reads of a driver: its identity, labels and node.
func stripDriverPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: pod.Labels, OwnerReferences: pod.OwnerReferences, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName},
	}, nil
}
