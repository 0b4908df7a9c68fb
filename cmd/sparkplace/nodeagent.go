package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/sparkplace/sparkplace/scratch"
)

type nodeAgentFlags struct {
	kubeconfig         string
	root               string
	nodeName           string
	gracePeriod        time.Duration
	interval           time.Duration
	metricsBindAddress string
	once               bool
}

func newNodeAgentCmd() *cobra.Command {
	f := &nodeAgentFlags{}
	cmd := &cobra.Command{
		Use:   "node-agent",
		Short: "Remove the NVMe scratch directories of pods that are gone from this node (run as a DaemonSet)",
		Long: `Every --interval, lists the pods bound to --node-name and removes each <root>/<namespace>/<pod>
directory the nvme profile made whose pod no longer exists or has terminated (OOM-killed and evicted
executors included). A directory changed within --grace-period stays, and so does one whose pod the API
server has on this node (or not yet bound) or whose recorded UID is the pod's: a live pod's directory never
goes. Directories sparkplace did not make are left alone. Prometheus /metrics and /healthz are served on
--metrics-bind-address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNodeAgent(cmd.Context(), f) },
	}
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	cmd.Flags().StringVar(&f.root, "root", "/pv-disks/local", "the NVMe root as this container sees it (config nvme.hostPath, mounted at the same path)")
	cmd.Flags().StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "the node this agent runs on (default $NODE_NAME, from the downward API)")
	cmd.Flags().DurationVar(&f.gracePeriod, "grace-period", 10*time.Minute, "keep a directory changed more recently than this, whatever the API server says")
	cmd.Flags().DurationVar(&f.interval, "interval", time.Minute, "time between sweeps")
	cmd.Flags().StringVar(&f.metricsBindAddress, "metrics-bind-address", ":8080", `address of /metrics and /healthz ("0" disables)`)
	cmd.Flags().BoolVar(&f.once, "once", false, "sweep once and exit")
	return cmd
}

func runNodeAgent(ctx context.Context, f *nodeAgentFlags) error {
	switch {
	case f.nodeName == "":
		return &exitError{code: exitBadInput, err: errors.New("--node-name (or $NODE_NAME) is required")}
	case f.root == "" || f.root[0] != '/':
		return &exitError{code: exitBadInput, err: fmt.Errorf("--root %q: want an absolute path", f.root)}
	case f.interval <= 0 || f.gracePeriod < 0:
		return &exitError{code: exitBadInput, err: errors.New("--interval must be positive and --grace-period not negative")}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctrl.SetLogger(zap.New())
	log := ctrl.Log.WithName("node-agent").WithValues("node", f.nodeName)
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &scratch.Sweeper{
		Root: f.root, Node: f.nodeName, Pods: scratch.ClientPods{Client: client}, GracePeriod: f.gracePeriod,
		Metrics: scratch.NewMetrics(reg), Log: log, Now: time.Now,
	}
	if f.once {
		res, err := s.Sweep(ctx)
		if err != nil {
			return err
		}
		log.Info("swept", "removed", res.Removed, "kept", res.Kept, "bytes", res.Bytes)
		return nil
	}
	if f.metricsBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		srv := &http.Server{Addr: f.metricsBindAddress, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "metrics server stopped")
			}
		}()
		defer srv.Close()
	}
	log.Info("sweeping", "root", f.root, "interval", f.interval, "gracePeriod", f.gracePeriod)
	s.Run(ctx, f.interval)
	return nil
}
