package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/policies"
	"github.com/sparkplace/sparkplace/relax"
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
	// PprofBindAddress serves Go's /debug/pprof profiles ("" or "0" disables).
	PprofBindAddress string
	Engine           Engine
	Metrics          *Metrics
	OnPolicyError    PolicyErrorMode
	// WebhookConfigName is the MutatingWebhookConfiguration that sends Spark pods here: bounded strictness
	// relaxes executors only in the namespaces it selects. Empty: every namespace.
	WebhookConfigName string
}

// Run serves the webhook until ctx is done.
func Run(ctx context.Context, o ServerOptions) error {
	if o.GetCertificate == nil {
		return errors.New("webhook server: no certificate source")
	}
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		PprofBindAddress:       o.PprofBindAddress,
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    o.Host,
			Port:    o.Port,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = o.GetCertificate }},
		}),
		Cache: cache.Options{
			// Every object stripped to what placement reads (see package cluster). Spark pods have their own
			// informer (cluster.NewPodInformer), which strips them before decoding.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}:          {Transform: cluster.StripNode},
				metadataOf("Namespace"): {Transform: cluster.StripNamespace},
				&appsv1.DaemonSet{}:     {Transform: cluster.StripDaemonSet},
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	reader := mgr.GetCache()
	state := cluster.NewState(apiPods{mgr.GetAPIReader()})
	// Only Spark pods: memory grows with Spark pods, not with the cluster's other pods.
	pods, err := cluster.NewPodInformer(o.RestConfig)
	if err != nil {
		return err
	}
	if _, err := pods.AddEventHandler(state.PodHandler()); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { pods.Run(ctx.Done()); return nil })); err != nil {
		return err
	}
	cachesSynced := func(ctx context.Context) bool {
		return reader.WaitForCacheSync(ctx) && toolscache.WaitForCacheSync(ctx.Done(), pods.HasSynced)
	}
	for _, inf := range []struct {
		obj     client.Object
		handler toolscache.ResourceEventHandler
	}{
		{&corev1.Node{}, state.NodeHandler()},
		{metadataOf("Namespace"), state.NamespaceHandler()},
		{&appsv1.DaemonSet{}, state.DaemonSetHandler()},
	} {
		informer, err := reader.GetInformer(ctx, inf.obj)
		if err != nil {
			return fmt.Errorf("starting informer for %T: %w", inf.obj, err)
		}
		if _, err := informer.AddEventHandler(inf.handler); err != nil {
			return fmt.Errorf("watching %T: %w", inf.obj, err)
		}
	}
	var synced atomic.Bool
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if cachesSynced(ctx) {
			synced.Store(true)
		}
		return nil
	})); err != nil {
		return err
	}
	relaxOptions := relax.Options{
		State: state, Client: mgr.GetClient(), Zone: func() policies.ZoneConfig { return o.Engine.Current().Zone() },
		Pending: o.Metrics.ExecutorsPending, Relaxations: o.Metrics.Relaxations, Log: mgr.GetLogger().WithName("relax"),
	}
	if o.WebhookConfigName != "" {
		relaxOptions.Scope = servedNamespaces(mgr.GetAPIReader(), o.WebhookConfigName, state.NamespaceLabels)
	}
	relaxer := relax.New(relaxOptions)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if !cachesSynced(ctx) {
			return nil
		}
		return relaxer.Start(ctx)
	})); err != nil {
		return err
	}
	for _, r := range o.Runnables {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	handler := &Handler{
		Placer:        &Placer{Engine: o.Engine, Cluster: state, Metrics: o.Metrics},
		Metrics:       o.Metrics,
		OnPolicyError: o.OnPolicyError,
	}
	server := mgr.GetWebhookServer()
	// As it comes: admission.Webhook puts the request's logger (named admission, with the object, user and
	// request id) into the handler's context itself; the baselines of make bench-cluster register theirs so.
	server.Register(Path, &admission.Webhook{Handler: handler})

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

func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}

// apiPods reads the owner pods the cache does not hold from the API server (see cluster.PodGetter).
type apiPods struct{ reader client.Reader }

func (a apiPods) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := a.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return pod, nil
}
