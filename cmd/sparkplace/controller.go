package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/sparkplace/sparkplace/jobs/controller"
)

func newControllerCmd() *cobra.Command {
	var (
		sf                                        submitterFlags
		opts                                      controller.Options
		leaseDuration, renewDeadline, retryPeriod time.Duration
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the job-run controller: creates drivers, records job-run states, cancels, expires finished runs",
		Long: `Owns every state transition of JobRuns and VirtualClusters (sparkplace.io/v1alpha1): it plans each run
against its virtual cluster's policy, creates the driver's service account (once per virtual cluster and
execution role), pod, ConfigMap and Service, records SUBMITTED, RUNNING and the final state from the driver,
fails drivers that do not start within job-start-timeout, carries out cancels, and deletes finished runs
after --finished-ttl. Run two replicas with --leader-elect: one is active, the other takes over.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New())
			s, err := sf.submitter(true)
			if err != nil {
				return err
			}
			if opts.Config, err = restConfig(sf.kubeconfig); err != nil {
				return err
			}
			opts.Plan = s.PlanOptions()
			opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = leaseDuration, renewDeadline, retryPeriod
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return controller.Run(ctx, opts)
		},
	}
	fs := cmd.Flags()
	fs.DurationVar(&opts.FinishedTTL, "finished-ttl", 30*24*time.Hour, "delete finished job runs this long after they finished (a JobRun's spec.ttlSecondsAfterFinished wins)")
	fs.StringVar(&opts.DriverClusterRole, "driver-cluster-role", "sparkplace-spark-driver", "ClusterRole bound to the driver service accounts in each virtual cluster's namespace")
	fs.StringVar(&opts.Namespace, "namespace", envOr("POD_NAMESPACE", "sparkplace"), "sparkplace's own namespace: holds the leader-election lease, never backs a virtual cluster")
	fs.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect one active replica")
	fs.DurationVar(&leaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a lost leader's lease blocks a successor")
	fs.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it stops")
	fs.DurationVar(&retryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to take the lease")
	fs.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	fs.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	sf.register(fs)
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
