package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/controller"
	"github.com/sparkplace/sparkplace/submit"
	"github.com/sparkplace/sparkplace/submit/api"
)

func newAPICmd() *cobra.Command {
	var (
		sf                              submitterFlags
		tf                              podTemplateFlags
		listen, certFile, keyFile       string
		credentialsNamespace, metrics   string
		allowedHosts, protectedNSExtras []string
	)
	cmd := &cobra.Command{
		Use:   "api [--listen 127.0.0.1:8080] [--tls-cert-file F --tls-key-file F]",
		Short: "Serve the emr-containers REST API (aws emr-containers --endpoint-url, SDKs, Airflow), SigV4-authenticated",
		Long: `Serves Amazon EMR on EKS's emr-containers API (virtual clusters and job runs) over the cluster, so existing
clients work unchanged, e.g.

  aws emr-containers start-job-run --endpoint-url https://sparkplace-api.example.com --virtual-cluster-id ID ...

Every request must be signed with AWS Signature Version 4 for --region and the service emr-containers. Access
keys live in Secrets of --credentials-namespace labelled sparkplace.io/api-credentials=true, with the data
keys accessKeyId, secretAccessKey, username and groups (comma-separated): each key acts as that Kubernetes
user (impersonation), so RBAC on jobruns and virtualclusters (sparkplace.io) decides what its holder may do.
Job runs and templates record the caller as createdBy: the Secret's optional arn (an IAM or STS ARN), else
arn:aws:iam::<--account-id>:user/<username>.
Browser requests (an Origin header, a Host not in --allowed-host, a body that is not JSON) are refused.

Pod templates (spark.kubernetes.{driver,executor}.podTemplateFile) are fetched at StartJobRun: s3:// with the
API's own AWS credentials (the SDK's default chain: IRSA in a cluster), configmap://name/key from the run's
namespace with the caller's access, local paths only from --pod-template-dir (refused without it).

It listens on loopback by default; any other address needs --tls-cert-file and --tls-key-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--listen %s: %w", listen, err)}
			}
			tlsOn := certFile != "" || keyFile != ""
			if ip := net.ParseIP(host); !tlsOn && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--listen %s is not a loopback address: serving the API beyond this machine needs --tls-cert-file and --tls-key-file", listen)}
			}
			if len(allowedHosts) == 0 {
				allowedHosts = []string{"localhost", "127.0.0.1", "::1"}
				if host != "" && host != "0.0.0.0" && host != "::" {
					allowedHosts = append(allowedHosts, host)
				}
			}
			cfg, err := restConfig(sf.kubeconfig)
			if err != nil {
				return err
			}
			scheme, err := controller.Scheme()
			if err != nil {
				return err
			}
			own, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("creating Kubernetes client: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			keys, err := api.WatchSecretKeys(ctx, cs, credentialsNamespace, logger)
			if err != nil {
				return err
			}
			imp, err := api.NewImpersonator(cfg, scheme)
			if err != nil {
				return err
			}
			base, err := sf.submitter(true)
			if err != nil {
				return err
			}
			opts := base.Options()
			if err := tf.apply(ctx, &opts, sf.region); err != nil {
				return err
			}
			opts.Directory = own
			opts.ProtectedNamespaces = append([]string{credentialsNamespace}, protectedNSExtras...)
			reg := prometheus.NewRegistry()
			handler := api.NewHandler(api.Options{
				Keys: keys, Region: sf.region, AllowedHosts: allowedHosts, Logger: logger, Metrics: api.NewMetrics(reg),
				ServiceFor: func(c api.Caller) (api.Service, error) {
					cl, err := imp.ClientFor(c)
					if err != nil {
						return nil, err
					}
					o := opts
					o.Client, o.CreatedBy = cl, c.IdentityARN(opts.AccountID)
					return submit.New(o), nil
				},
			})
			if metrics != "0" {
				go serveMetrics(ctx, metrics, reg, logger)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--listen %s: %w", listen, err)}
			}
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			proto := "http"
			if tlsOn {
				w, err := certwatcher.New(certFile, keyFile)
				if err != nil {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--tls-cert-file/--tls-key-file: %w", err)}
				}
				go func() { _ = w.Start(ctx) }()
				ln = tls.NewListener(ln, &tls.Config{GetCertificate: w.GetCertificate, MinVersion: tls.VersionTLS12})
				proto = "https"
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			logger.Info("serving emr-containers API", "address", proto+"://"+ln.Addr().String(), "region", sf.region, "allowedHosts", allowedHosts)
			select {
			case err := <-errc:
				return fmt.Errorf("serving: %w", err)
			case <-ctx.Done():
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("shutting down: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on (not loopback: TLS required)")
	fs.StringVar(&certFile, "tls-cert-file", "", "serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&keyFile, "tls-key-file", "", "serving key (PEM)")
	fs.StringSliceVar(&allowedHosts, "allowed-host", nil, "Host header names the API answers to (default: localhost, 127.0.0.1, ::1 and the --listen host)")
	fs.StringVar(&credentialsNamespace, "credentials-namespace", envOr("POD_NAMESPACE", "sparkplace"), "namespace of the credentials Secrets (sparkplace's own; never a virtual cluster)")
	fs.StringSliceVar(&protectedNSExtras, "protected-namespace", nil, "further namespaces that may never back a virtual cluster")
	fs.StringVar(&metrics, "metrics-bind-address", "0", `address of /metrics ("0" disables)`)
	sf.register(fs)
	tf.register(fs, "", "the only directory local pod template paths may name, e.g. a mounted ConfigMap of the platform's templates (default: local paths are refused)")
	return cmd
}

func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) {
	srv := &http.Server{Addr: addr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server", "err", err)
	}
}
