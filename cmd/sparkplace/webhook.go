package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sparkplace/sparkplace/certs"
	"github.com/sparkplace/sparkplace/policies"
	"github.com/sparkplace/sparkplace/webhook"
)

type webhookFlags struct {
	kubeconfig string
	host       string
	port       int
	certFlags
	metricsBindAddress     string
	healthProbeBindAddress string
	pprofBindAddress       string
	policyFlags
	onPolicyError string
}

// policyFlags select the policy bundle; `webhook` and `policy eval` share them.
type policyFlags struct {
	policyDir      string
	configFile     string
	guardrailsFile string
	policyTimeout  time.Duration
	evaluator      string
}

func (f *policyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.policyDir, "policy-dir", "", "directory of extra or replacement .rego files (a file named like an embedded one replaces it) and their data.json/data.yaml (data.sparkplace.custom)")
	cmd.Flags().StringVar(&f.configFile, "config", "", "YAML or JSON file merged over data.sparkplace.config (defaults: policies/bundle/sparkplace/config/data.yaml)")
	cmd.Flags().StringVar(&f.guardrailsFile, "guardrails", "", "YAML or JSON file over the default guardrails (what any decision may do), kept apart from --config")
	cmd.Flags().DurationVar(&f.policyTimeout, "policy-timeout", time.Second, "deadline for one policy evaluation")
	cmd.Flags().StringVar(&f.evaluator, "policy-evaluator", policies.EvaluatorPlan, "what evaluates a decision-cache miss: plan (the bundle's compiled plan, OPA's evaluator where it cannot) or topdown (OPA's evaluator only, several times slower)")
}

func (f *policyFlags) engine(ctx context.Context, onReload func(string, error)) (*policies.Engine, error) {
	e, err := policies.New(ctx, policies.Options{PolicyDir: f.policyDir, ConfigFile: f.configFile, GuardrailsFile: f.guardrailsFile, Timeout: f.policyTimeout, Evaluator: f.evaluator, OnReload: onReload})
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("loading policies: %w", err)}
	}
	return e, nil
}

func newWebhookCmd() *cobra.Command {
	f := &webhookFlags{}
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the mutating admission webhook for Spark driver and executor pods",
		Long: `Serves /mutate-spark-pods over TLS (certificate files reloaded when they change), with /healthz and
/readyz on --health-probe-bind-address and Prometheus /metrics on --metrics-bind-address. Only CREATE of
pods labelled spark-role=driver|executor is changed; every other request is allowed unchanged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWebhook(cmd.Context(), f) },
	}
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	cmd.Flags().StringVar(&f.host, "bind-address", "", "address the webhook listens on (default all)")
	cmd.Flags().IntVar(&f.port, "port", 9443, "port the webhook listens on")
	f.certFlags.register(cmd)
	cmd.Flags().StringVar(&f.metricsBindAddress, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	cmd.Flags().StringVar(&f.healthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	cmd.Flags().StringVar(&f.pprofBindAddress, "pprof-bind-address", "0", `address of Go's /debug/pprof profiles, e.g. 127.0.0.1:6060 ("0" disables)`)
	cmd.Flags().StringVar(&f.onPolicyError, "on-policy-error", string(webhook.PolicyErrorDeny), "answer to a policy error or guardrail violation: deny (the pod is rejected with the reason) or allow (admitted unchanged, with a warning)")
	f.policyFlags.register(cmd)
	return cmd
}

func runWebhook(ctx context.Context, f *webhookFlags) error {
	mode := webhook.PolicyErrorMode(f.onPolicyError)
	if mode != webhook.PolicyErrorDeny && mode != webhook.PolicyErrorAllow {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--on-policy-error=%q: want deny or allow", f.onPolicyError)}
	}
	ctrl.SetLogger(zap.New())
	log := ctrl.Log.WithName("sparkplace")
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	m := webhook.NewMetrics(metrics.Registry)
	var engine *policies.Engine
	// loaded reports the bundle in effect (the last good one after a failed reload).
	loaded := func(msg string, err error) {
		v := engine.Current()
		evaluator, why := v.Evaluator()
		m.BundleLoaded(v.Hash(), evaluator, err)
		if err != nil {
			log.Error(err, "policy reload failed; serving the last good bundle", "bundle", v.Hash(), "evaluator", evaluator)
			return
		}
		log.Info(msg, "bundle", v.Hash(), "evaluator", evaluator)
		if why != "" {
			log.Info("decision-cache misses are evaluated by OPA's evaluator, several times slower than the plan", "why", why)
		}
	}
	engine, err = f.engine(ctx, func(_ string, err error) { loaded("policies reloaded", err) })
	if err != nil {
		return err
	}
	loaded("policies loaded", nil)
	for _, c := range webhook.CacheCollectors(engine.CacheStats) {
		if err := metrics.Registry.Register(c); err != nil {
			return fmt.Errorf("registering decision-cache metrics: %w", err)
		}
	}

	source, err := f.certFlags.source(cfg)
	if err != nil {
		return err
	}
	if err := metrics.Registry.Register(certs.NewCollector(source)); err != nil {
		return fmt.Errorf("registering certificate metrics: %w", err)
	}
	return webhook.Run(ctx, webhook.ServerOptions{
		RestConfig:             cfg,
		Host:                   f.host,
		Port:                   f.port,
		GetCertificate:         source.GetCertificate,
		CertificateReady:       certs.ReadyCheck(source),
		Runnables:              []manager.Runnable{source, manager.RunnableFunc(func(ctx context.Context) error { engine.Watch(ctx); return nil })},
		MetricsBindAddress:     f.metricsBindAddress,
		HealthProbeBindAddress: f.healthProbeBindAddress,
		PprofBindAddress:       f.pprofBindAddress,
		Engine:                 engine,
		Metrics:                m,
		OnPolicyError:          mode,
		WebhookConfigName:      f.webhookConfigName,
	})
}

// restConfig reads --kubeconfig, else the in-cluster config, else $KUBECONFIG or ~/.kube/config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)}
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes configuration (in-cluster, $KUBECONFIG or --kubeconfig): %w", err)
	}
	return cfg, nil
}
