package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sparkplace/sparkplace/certs"
)

// Certificate modes of `sparkplace webhook --cert-mode`.
const (
	certModeFiles       = "files"
	certModeSelfManaged = "self-managed"
)

// certFlags pick and configure the serving certificate source.
type certFlags struct {
	mode                 string
	certFile, keyFile    string
	caFile               string
	secret               string
	serviceName          string
	serviceNamespace     string
	webhookConfigName    string
	extraHosts           []string
	caLifetime           time.Duration
	servingLifetime      time.Duration
	caPropagationDelay   time.Duration
	resyncInterval       time.Duration
	certFilePollInterval time.Duration
}

func (f *certFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "cert-mode", certModeFiles, `where the serving certificate comes from: "files" (--tls-cert-file/--tls-key-file, e.g. a Secret cert-manager maintains) or "self-managed" (a CA and certificate the webhook keeps in --cert-secret and renews itself)`)
	fl.StringVar(&f.certFile, "tls-cert-file", "/etc/sparkplace/tls/tls.crt", "files mode: serving certificate (PEM), reloaded when it changes")
	fl.StringVar(&f.keyFile, "tls-key-file", "/etc/sparkplace/tls/tls.key", "files mode: serving key (PEM), reloaded when it changes")
	fl.StringVar(&f.caFile, "tls-ca-file", "", "files mode: CA certificate (PEM), read only to export its expiry metric")
	fl.DurationVar(&f.certFilePollInterval, "tls-poll-interval", 10*time.Second, "files mode: how often the files are re-read besides file-system events")
	fl.StringVar(&f.secret, "cert-secret", "sparkplace-webhook-tls", "self-managed mode: Secret in --service-namespace holding the CA, the serving certificate and the CA bundle")
	fl.StringVar(&f.serviceName, "service-name", "sparkplace-webhook", "self-managed mode: the webhook's Service; the certificate carries its DNS names")
	fl.StringVar(&f.serviceNamespace, "service-namespace", "", "self-managed mode: namespace of the Service and the Secret (required)")
	fl.StringVar(&f.webhookConfigName, "webhook-config-name", "sparkplace", `the MutatingWebhookConfiguration that sends Spark pods to this webhook: bounded strictness relaxes executors only in the namespaces it selects, and the self-managed mode writes the CA bundle into its webhooks ("": every namespace, no CA bundle written)`)
	fl.StringSliceVar(&f.extraHosts, "cert-extra-hosts", nil, "self-managed mode: further DNS names or IPs for the serving certificate (e.g. 127.0.0.1)")
	fl.DurationVar(&f.caLifetime, "ca-lifetime", 365*24*time.Hour, "self-managed mode: lifetime of a new CA; a new CA is staged at 2/3 of it")
	fl.DurationVar(&f.servingLifetime, "serving-cert-lifetime", 90*24*time.Hour, "self-managed mode: lifetime of a serving certificate; renewed at 2/3 of it")
	fl.DurationVar(&f.caPropagationDelay, "ca-propagation-delay", time.Minute, "self-managed mode: how long a new CA is in the caBundle before it signs certificates")
	fl.DurationVar(&f.resyncInterval, "cert-resync-interval", time.Minute, "self-managed mode: how often each replica re-reads the Secret when no renewal is due")
}

// source builds the certificate source --cert-mode names.
func (f *certFlags) source(cfg *rest.Config) (certs.Source, error) {
	switch f.mode {
	case certModeFiles:
		src, err := certs.NewFileSource(certs.FileOptions{CertFile: f.certFile, KeyFile: f.keyFile, CAFile: f.caFile, PollInterval: f.certFilePollInterval})
		if err != nil {
			return nil, fmt.Errorf("loading the serving certificate: %w", err)
		}
		return src, nil
	case certModeSelfManaged:
		if f.serviceNamespace == "" {
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--cert-mode=%s needs --service-namespace", certModeSelfManaged)}
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("certificate client: %w", err)
		}
		src, err := certs.NewSelfManaged(certs.SelfManagedOptions{
			Secrets:           client.CoreV1().Secrets(f.serviceNamespace),
			Webhooks:          client.AdmissionregistrationV1().MutatingWebhookConfigurations(),
			SecretName:        f.secret,
			ServiceName:       f.serviceName,
			ServiceNamespace:  f.serviceNamespace,
			ExtraHosts:        f.extraHosts,
			WebhookConfigName: f.webhookConfigName,
			CALifetime:        f.caLifetime,
			ServingLifetime:   f.servingLifetime,
			PropagationDelay:  f.caPropagationDelay,
			ResyncInterval:    f.resyncInterval,
			Log:               ctrl.Log.WithName("certs"),
		})
		if err != nil {
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("self-managed certificates: %w", err)}
		}
		return src, nil
	}
	return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--cert-mode=%q: want %s or %s", f.mode, certModeFiles, certModeSelfManaged)}
}
