package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sparkplace/sparkplace/policies"
	"github.com/sparkplace/sparkplace/webhook"
)

type webhookFlags struct {
	kubeconfig             string
	host                   string
	port                   int
	tlsCertFile            string
	tlsKeyFile             string
	metricsBindAddress     string
	healthProbeBindAddress string
	policyFlags
	onPolicyError string
}

// policyFlags select the policy bundle; `webhook` and `policy eval` share them.
type policyFlags struct {
	policyDir     string
	configFile    string
	policyTimeout time.Duration
}

func (f *policyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.policyDir, "policy-dir", "", "directory of extra or replacement .rego files (a file named like an embedded one replaces it)")
	cmd.Flags().StringVar(&f.configFile, "config", "", "YAML or JSON file merged over data.sparkplace.config (the bundle's config.yaml)")
	cmd.Flags().DurationVar(&f.policyTimeout, "policy-timeout", time.Second, "deadline for one policy evaluation")
}

func (f *policyFlags) engine(ctx context.Context, onReload func(string, error)) (*policies.Engine, error) {
	e, err := policies.New(ctx, policies.Options{PolicyDir: f.policyDir, ConfigFile: f.configFile, Timeout: f.policyTimeout, OnReload: onReload})
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
	cmd.Flags().StringVar(&f.tlsCertFile, "tls-cert-file", "/etc/sparkplace/tls/tls.crt", "serving certificate (PEM), reloaded when it changes")
	cmd.Flags().StringVar(&f.tlsKeyFile, "tls-key-file", "/etc/sparkplace/tls/tls.key", "serving key (PEM), reloaded when it changes")
	cmd.Flags().StringVar(&f.metricsBindAddress, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	cmd.Flags().StringVar(&f.healthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
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
	engine, err := f.engine(ctx, func(hash string, err error) {
		m.BundleLoaded(hash, err)
		if err != nil {
			log.Error(err, "policy reload failed; serving the last good bundle", "bundle", hash)
		} else {
			log.Info("policies reloaded", "bundle", hash)
		}
	})
	if err != nil {
		return err
	}
	m.BundleLoaded(engine.Hash(), nil)
	log.Info("policies loaded", "bundle", engine.Hash())

	watcher, err := certwatcher.New(f.tlsCertFile, f.tlsKeyFile)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	return webhook.Run(ctx, webhook.ServerOptions{
		RestConfig:             cfg,
		Host:                   f.host,
		Port:                   f.port,
		GetCertificate:         watcher.GetCertificate,
		CertificateReady:       certificateReady(watcher.GetCertificate),
		Runnables:              []manager.Runnable{watcher, manager.RunnableFunc(func(ctx context.Context) error { engine.Watch(ctx); return nil })},
		MetricsBindAddress:     f.metricsBindAddress,
		HealthProbeBindAddress: f.healthProbeBindAddress,
		Engine:                 engine,
		Metrics:                m,
		OnPolicyError:          mode,
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

// certificateReady fails while the serving certificate is missing or outside its validity period.
func certificateReady(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*http.Request) error {
	return func(*http.Request) error {
		cert, err := get(nil)
		if err != nil {
			return err
		}
		if cert == nil || len(cert.Certificate) == 0 {
			return errors.New("no serving certificate loaded")
		}
		leaf := cert.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return fmt.Errorf("parsing the serving certificate: %w", err)
			}
		}
		if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return fmt.Errorf("serving certificate valid %s to %s, not now", leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
		}
		return nil
	}
}
