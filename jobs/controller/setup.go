package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

// Options configure the controller manager.
type Options struct {
	// Config reaches the API server. Required.
	Config *rest.Config
	// Plan holds the settings plans depend on (release table, region, account, SPARK_USER).
	Plan submit.PlanOptions
	// FinishedTTL keeps finished runs this long unless a run says otherwise. Defaults to 30 days.
	FinishedTTL time.Duration
	// DriverClusterRole is bound to each virtual cluster's driver service accounts. Defaults to
	// "sparkplace-spark-driver" (shipped in the manifests).
	DriverClusterRole string
	// Namespace is sparkplace's own: it holds the leader-election lease and never backs a virtual cluster.
	// Defaults to "sparkplace".
	Namespace string
	// LeaderElection turns on leader election (on in every Deployment: two replicas, one active).
	LeaderElection bool
	// LeaseDuration, RenewDeadline and RetryPeriod tune failover. Default 15s, 10s, 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// MetricsBindAddress serves /metrics ("0" disables). HealthProbeBindAddress serves /healthz and /readyz.
	MetricsBindAddress, HealthProbeBindAddress string
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Scheme is the controller's scheme: the built-in types and sparkplace's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run starts the manager and blocks until ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.FinishedTTL == 0 {
		opts.FinishedTTL = 30 * 24 * time.Hour
	}
	if opts.DriverClusterRole == "" {
		opts.DriverClusterRole = "sparkplace-spark-driver"
	}
	if opts.Namespace == "" {
		opts.Namespace = "sparkplace"
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	// Only the pods of job runs are cached, not every pod of the cluster.
	hasRun, err := labels.NewRequirement(submit.LabelJobRunID, selection.Exists, nil)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*hasRun)},
		}},
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:        opts.HealthProbeBindAddress,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              "sparkplace-jobs-controller",
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationOr(opts.LeaseDuration),
		RenewDeadline:                 durationOr(opts.RenewDeadline),
		RetryPeriod:                   durationOr(opts.RetryPeriod),
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	m := NewMetrics(metrics.Registry, mgr.GetCache())
	runs := &JobRunReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: opts.Clock, Plan: opts.Plan,
		FinishedTTL: opts.FinishedTTL, DriverClusterRole: opts.DriverClusterRole, Metrics: m,
	}
	err = ctrl.NewControllerManagedBy(mgr).Named("jobrun").
		For(&v1alpha1.JobRun{}).
		Owns(&corev1.Pod{}).
		Complete(runs)
	if err != nil {
		return fmt.Errorf("setting up the job-run controller: %w", err)
	}
	vcs := &VirtualClusterReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), ProtectedNamespaces: []string{opts.Namespace}}
	err = ctrl.NewControllerManagedBy(mgr).Named("virtualcluster").
		For(&v1alpha1.VirtualCluster{}).
		// A virtual cluster being terminated waits for its runs to finish.
		Watches(&v1alpha1.JobRun{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetLabels()[submit.LabelVirtualClusterID]}}}
		})).
		Complete(vcs)
	if err != nil {
		return fmt.Errorf("setting up the virtual-cluster controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// durationOr returns a pointer to d, or nil (the manager's default) when d is zero.
func durationOr(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}
