package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplace/sparkplace/submit/api"
)

func newAPICmd() *cobra.Command {
	var (
		sf     submitterFlags
		listen string
	)
	cmd := &cobra.Command{
		Use:   "api [--listen 127.0.0.1:8080]",
		Short: "Serve the emr-containers REST API (aws emr-containers --endpoint-url, SDKs, Airflow)",
		Long: `Serves Amazon EMR on EKS's emr-containers API (virtual clusters and job runs) over the cluster, so existing
clients work unchanged, e.g.

  aws emr-containers start-job-run --endpoint-url http://127.0.0.1:8080 --virtual-cluster-id ID ...

Requests are NOT authenticated (SigV4 signatures are accepted unchecked): anyone who reaches the port can
start Spark jobs with the server's Kubernetes permissions. Keep it on localhost or behind an authenticating proxy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--listen %s: %w", listen, err)}
			}
			srv := &http.Server{
				Handler:           api.NewHandler(api.Options{Service: s, Logger: logger}),
				ReadHeaderTimeout: 10 * time.Second,
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			logger.Info("serving emr-containers API", "address", "http://"+ln.Addr().String())
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
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	sf.register(cmd.Flags())
	return cmd
}
