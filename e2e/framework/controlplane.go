package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configures Start. The zero value is usable from any test inside the module.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and kwok-stages/.
	// Defaults to $SPARKPLACE_CONTROL_PLANE_BIN, else <module root>/bin/control-plane (see BinDir).
	BinDir string
	// Dir receives data, certificates, the kubeconfig and one log per process. Defaults to a new temporary
	// directory, removed by Stop unless KeepDir is set.
	Dir     string
	KeepDir bool
	// Detached leaves the processes running when this program exits (no parent-death signal, no signal
	// handler): the demo starts the control plane and exits. Stop them with StopPIDFile.
	Detached bool
	// Logf reports progress, e.g. t.Logf or log.Printf. Defaults to discarding.
	Logf func(format string, args ...any)
	// SchedulerQPS is kube-scheduler's client rate limit (its burst twice that). Defaults to 200.
	SchedulerQPS int
	// Profiling serves Go's /debug/pprof on kube-apiserver (to the admin client) and on kube-scheduler's
	// secure port (to anyone on loopback, as its /metrics): the benchmarks profile them.
	Profiling bool
}

// ControlPlane is a running local control plane.
type ControlPlane struct {
	// Dir holds everything the control plane writes (see Options.Dir).
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (client certificate in group system:masters).
	Kubeconfig string
	// Config and Client talk to the API server as admin.
	Config *rest.Config
	Client kubernetes.Interface
	// CA signed the API server's serving certificate and the admin client certificate.
	CA *CA
	// SchedulerMetricsURL is kube-scheduler's /metrics (HTTPS, its own self-signed certificate, no client
	// authentication: the benchmarks read its plugin and extension-point timings).
	SchedulerMetricsURL string
	// SchedulerProfileURL is kube-scheduler's CPU profile (/debug/pprof/profile, served like /metrics), when
	// Options.Profiling is set.
	SchedulerProfileURL string

	opts      Options
	binDir    string
	mu        sync.Mutex
	processes []*Process
	stopOnce  sync.Once
	stopErr   error
	signals   chan os.Signal
}

// PIDFile is the file, in a detached control plane's Dir, listing its process group ids.
const PIDFile = "pids"

// BinDir resolves where the control-plane binaries are: $SPARKPLACE_CONTROL_PLANE_BIN, else
// bin/control-plane under the module root found from the working directory.
func BinDir() (string, error) {
	if d := os.Getenv("SPARKPLACE_CONTROL_PLANE_BIN"); d != "" {
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "control-plane"), nil
}

// ModuleRoot walks up from the working directory to the folder holding go.mod (go test runs a package's tests
// in the package folder).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, and returns once the
// API server is ready and the controller-manager has created the default ServiceAccount (without it pods are
// refused). On error everything started so far is stopped.
//
// The ports are free when picked but bound only when the processes start: another test run on the machine
// may take one meanwhile. Start then tries again, with new ports, up to three times.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	for attempt := 1; ; attempt++ {
		cp, err := start(ctx, opts)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return cp, err
		}
		opts.Logf("a port was taken meanwhile, starting again: %v", err)
		if opts.Dir != "" {
			// etcd refuses a data dir bootstrapped with other peer URLs.
			if err := os.RemoveAll(filepath.Join(opts.Dir, "etcd")); err != nil {
				return nil, fmt.Errorf("clean etcd data: %w", err)
			}
		}
	}
}

func start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	cp := &ControlPlane{opts: opts, binDir: opts.BinDir}
	if cp.binDir == "" {
		if cp.binDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(cp.binDir, b)); err != nil {
			return nil, fmt.Errorf("control-plane binary missing (run `make control-plane`): %w", err)
		}
	}
	cp.Dir = opts.Dir
	if cp.Dir == "" {
		removeStaleDirs(opts.Logf)
		if cp.Dir, err = os.MkdirTemp("", tempDirPrefix); err != nil {
			return nil, fmt.Errorf("temporary directory: %w", err)
		}
	} else if err := os.MkdirAll(cp.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("control-plane directory: %w", err)
	}
	if !opts.Detached {
		cp.handleSignals()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()

	start := time.Now()
	files, err := cp.writePKI()
	if err != nil {
		return nil, err
	}
	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiURL := "https://127.0.0.1:" + strconv.Itoa(ports[2])

	etcd, err := cp.StartProcess("etcd", filepath.Join(cp.binDir, "etcd"), []string{
		"--name=default",
		"--data-dir=" + filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--unsafe-no-fsync", // throw-away data: fsync only costs time on a shared disk
		"--log-level=warn",
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, etcd, "etcd", func(ctx context.Context) bool { return httpOK(ctx, nil, etcdURL+"/health") }); err != nil {
		return nil, err
	}
	cp.opts.Logf("etcd ready on %s (%s)", etcdURL, time.Since(start).Round(time.Millisecond))

	api, err := cp.StartProcess("kube-apiserver", filepath.Join(cp.binDir, "kube-apiserver"), []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[2]),
		// 127.0.0.1 is not a valid Endpoints address: do not reconcile the kubernetes Service endpoints.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + files.apiCert, "--tls-private-key-file=" + files.apiKey,
		"--client-ca-file=" + files.caCert,
		"--service-account-key-file=" + files.saPub,
		"--service-account-signing-key-file=" + files.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true", // the NVMe policy adds a chown init container on hostPath
		"--cert-dir=" + filepath.Join(cp.Dir, "apiserver"),
		"--profiling=" + strconv.FormatBool(opts.Profiling),
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := cp.connect(apiURL, files); err != nil {
		return nil, err
	}
	readyz := func(ctx context.Context) bool {
		body, err := cp.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}
	if err := waitFor(ctx, api, "kube-apiserver", readyz); err != nil {
		return nil, err
	}
	cp.opts.Logf("kube-apiserver ready on %s (%s)", apiURL, time.Since(start).Round(time.Millisecond))

	cm, err := cp.StartProcess("kube-controller-manager", filepath.Join(cp.binDir, "kube-controller-manager"), []string{
		"--kubeconfig=" + cp.Kubeconfig,
		// nodeipam would want a cluster CIDR; kwok nodes need none.
		"--controllers=*,-nodeipam",
		"--service-account-private-key-file=" + files.saKey,
		"--root-ca-file=" + files.caCert,
		"--cluster-signing-cert-file=" + files.caCert, "--cluster-signing-key-file=" + files.caKey,
		"--leader-elect=false", "--secure-port=0",
		// The node lifecycle controller lifts each new node's not-ready taint with API calls; at the default
		// 20 QPS a fleet of 50 nodes takes ten seconds to become schedulable.
		"--kube-api-qps=200", "--kube-api-burst=400",
	}, nil)
	if err != nil {
		return nil, err
	}
	schedulerQPS := cp.opts.SchedulerQPS
	if schedulerQPS <= 0 {
		schedulerQPS = 200
	}
	schedulerURL := "https://127.0.0.1:" + strconv.Itoa(ports[3])
	cp.SchedulerMetricsURL = schedulerURL + "/metrics"
	openPaths := "/healthz,/readyz,/livez,/metrics"
	if opts.Profiling {
		cp.SchedulerProfileURL = schedulerURL + "/debug/pprof/profile"
		openPaths += ",/debug/pprof/*"
	}
	if _, err := cp.StartProcess("kube-scheduler", filepath.Join(cp.binDir, "kube-scheduler"), []string{
		"--kubeconfig=" + cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[3]), "--cert-dir=" + filepath.Join(cp.Dir, "scheduler"),
		"--authorization-always-allow-paths=" + openPaths, "--profiling=" + strconv.FormatBool(opts.Profiling),
		// Every binding is an API call: at the default 50 QPS the scheduler, not the webhook, would set the pace
		// of the scale tests.
		"--kube-api-qps=" + strconv.Itoa(schedulerQPS), "--kube-api-burst=" + strconv.Itoa(2*schedulerQPS),
	}, nil); err != nil {
		return nil, err
	}
	stages, err := filepath.Glob(filepath.Join(cp.binDir, "kwok-stages", "*.yaml"))
	if err != nil || len(stages) == 0 {
		return nil, fmt.Errorf("no kwok stages in %s (run `make control-plane`)", filepath.Join(cp.binDir, "kwok-stages"))
	}
	kwokArgs := []string{
		"--kubeconfig=" + cp.Kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
	}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	if _, err := cp.StartProcess("kwok", filepath.Join(cp.binDir, "kwok"), kwokArgs, nil); err != nil {
		return nil, err
	}
	saReady := func(ctx context.Context) bool {
		_, err := cp.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}
	if err := waitFor(ctx, cm, "kube-controller-manager", saReady); err != nil {
		return nil, err
	}
	cp.opts.Logf("control plane ready in %s (dir %s)", time.Since(start).Round(time.Millisecond), cp.Dir)
	return cp, nil
}

// tempDirPrefix names the temporary directories of control planes started without Options.Dir.
const tempDirPrefix = "sparkplace-e2e-"

// removeStaleDirs removes the temporary directories that test binaries killed without cleanups (go test's
// -timeout panic, SIGKILL) left behind: their processes died with them, their files stay. A directory goes
// only when it is over an hour old and no process mentions it, so runs in progress keep theirs.
func removeStaleDirs(logf func(string, ...any)) {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil || !info.IsDir() || time.Since(info.ModTime()) < time.Hour {
			continue
		}
		if left, err := Leftovers(dir); err != nil || len(left) > 0 {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			logf("removed %s, left behind by a killed run", dir)
		}
	}
}

// pkiFiles are the paths written by writePKI.
type pkiFiles struct {
	caCert, caKey, apiCert, apiKey, adminCert, adminKey, saKey, saPub string
}

func (cp *ControlPlane) writePKI() (pkiFiles, error) {
	dir := filepath.Join(cp.Dir, "pki")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pkiFiles{}, fmt.Errorf("pki directory: %w", err)
	}
	f := pkiFiles{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		apiCert: filepath.Join(dir, "apiserver.crt"), apiKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	ca, err := NewCA("sparkplace-e2e-ca")
	if err != nil {
		return f, err
	}
	cp.CA = ca
	if err := (&KeyPair{CertPEM: ca.CertPEM, KeyPEM: ca.KeyPEM}).Write(f.caCert, f.caKey); err != nil {
		return f, err
	}
	api, err := ca.Issue(CertRequest{
		CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
	})
	if err != nil {
		return f, err
	}
	if err := api.Write(f.apiCert, f.apiKey); err != nil {
		return f, err
	}
	admin, err := ca.Issue(CertRequest{CommonName: "sparkplace-admin", Organization: []string{"system:masters"}, Client: true})
	if err != nil {
		return f, err
	}
	if err := admin.Write(f.adminCert, f.adminKey); err != nil {
		return f, err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return f, err
	}
	if err := os.WriteFile(f.saKey, saKey, 0o600); err != nil {
		return f, fmt.Errorf("write service-account key: %w", err)
	}
	if err := os.WriteFile(f.saPub, saPub, 0o644); err != nil {
		return f, fmt.Errorf("write service-account public key: %w", err)
	}
	return f, nil
}

// connect writes the admin kubeconfig (credentials embedded, so it can be copied) and builds the client.
func (cp *ControlPlane) connect(apiURL string, f pkiFiles) error {
	adminCert, err := os.ReadFile(f.adminCert)
	if err != nil {
		return fmt.Errorf("read admin certificate: %w", err)
	}
	adminKey, err := os.ReadFile(f.adminKey)
	if err != nil {
		return fmt.Errorf("read admin key: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sparkplace"] = &clientcmdapi.Cluster{Server: apiURL, CertificateAuthorityData: cp.CA.CertPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: adminCert, ClientKeyData: adminKey}
	kc.Contexts["sparkplace"] = &clientcmdapi.Context{Cluster: "sparkplace", AuthInfo: "admin"}
	kc.CurrentContext = "sparkplace"
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, cp.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	// The tests and the Spark simulator create hundreds of pods; client-side throttling would measure the
	// client, not the webhook. (Spark's fabric8 client does not throttle either.)
	cfg.QPS, cfg.Burst = 500, 1000
	cp.Config = cfg
	if cp.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// StartProcess starts a child that Stop will stop (the webhook uses it too). Its log is Dir/name.log.
func (cp *ControlPlane) StartProcess(name, binary string, args, env []string) (*Process, error) {
	p, err := startProcess(cp.Dir, name, binary, args, env, cp.opts.Detached)
	if err != nil {
		return nil, err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.processes = append(cp.processes, p)
	if cp.opts.Detached {
		if err := cp.writePIDFileLocked(); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Process returns the running child of that name ("kube-apiserver", "etcd", ...), or nil: for its pid, to
// read its CPU time and memory from /proc.
func (cp *ControlPlane) Process(name string) *Process {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i := len(cp.processes) - 1; i >= 0; i-- {
		if cp.processes[i].Name == name {
			return cp.processes[i]
		}
	}
	return nil
}

// Processes returns the children started so far (the control plane's and the webhooks'), oldest first.
func (cp *ControlPlane) Processes() []*Process {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]*Process(nil), cp.processes...)
}

// writePIDFileLocked records the process groups of a detached control plane for StopPIDFile.
func (cp *ControlPlane) writePIDFileLocked() error {
	var b []byte
	for _, p := range cp.processes {
		b = fmt.Appendf(b, "%d %s\n", p.Pid(), p.Name)
	}
	if err := os.WriteFile(filepath.Join(cp.Dir, PIDFile), b, 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// Stop stops every process in reverse start order (kwok and the scheduler before the API server, etcd last),
// removes Dir unless KeepDir is set, and reports any process that is still alive afterwards. It is safe to call
// more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		if cp.signals != nil {
			signal.Stop(cp.signals)
		}
		cp.mu.Lock()
		procs := append([]*Process(nil), cp.processes...)
		cp.mu.Unlock()
		var errs []error
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].Stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if left, err := Leftovers(cp.Dir); err != nil {
			errs = append(errs, err)
		} else if len(left) > 0 {
			errs = append(errs, fmt.Errorf("control-plane processes outlived Stop: %v", left))
		}
		if !cp.opts.KeepDir && cp.opts.Dir == "" {
			if err := os.RemoveAll(cp.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", cp.Dir, err))
			}
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// handleSignals stops the control plane on SIGINT/SIGTERM (Ctrl-C, a CI runner's cancel) and then exits, since
// the test binary would otherwise die with the signal's default action and skip every cleanup.
func (cp *ControlPlane) handleSignals() {
	cp.signals = make(chan os.Signal, 1)
	signal.Notify(cp.signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig, ok := <-cp.signals
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "sparkplace e2e: %v: stopping the control plane\n", sig)
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "sparkplace e2e: %v\n", err)
		}
		os.Exit(130)
	}()
}

// StopPIDFile stops the process groups recorded by a detached control plane in dir and removes the pid file.
// Groups already gone are skipped.
func StopPIDFile(dir string) error {
	path := filepath.Join(dir, PIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	var pgids []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var pgid int
		var name string
		if _, err := fmt.Sscanf(line, "%d %s", &pgid, &name); err != nil || pgid <= 1 {
			continue
		}
		// A stale file (after a reboot) may name ids reused by unrelated processes: signal a group only while
		// its leader is still one of ours, i.e. mentions dir on its command line.
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pgid), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), filepath.Clean(dir)+"/") {
			pgids = append(pgids, pgid)
		}
	}
	var errs []error
	if err := stopGroups(pgids, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	if left, err := Leftovers(dir); err != nil {
		errs = append(errs, err)
	} else if len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes still running: %v", left))
	}
	if len(errs) == 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove pid file: %w", err)
		}
	}
	return errors.Join(errs...)
}

// stopGroups stops process groups that are not our children, newest first (the API server before etcd, which
// it would otherwise wait for): SIGTERM, wait up to grace, SIGKILL. The cluster is thrown away, so a short grace
// is enough.
func stopGroups(pgids []int, grace time.Duration) error {
	var errs []error
	for i := len(pgids) - 1; i >= 0; i-- {
		pg := pgids[i]
		_ = syscall.Kill(-pg, syscall.SIGTERM)
		if waitGroupGone(pg, grace) {
			continue
		}
		_ = syscall.Kill(-pg, syscall.SIGKILL)
		if !waitGroupGone(pg, 5*time.Second) {
			errs = append(errs, fmt.Errorf("process group %d survives SIGKILL", pg))
		}
	}
	return errors.Join(errs...)
}

// waitGroupGone waits until no process of group pg is left, or its leader is a zombie (it has exited; our
// processes fork nothing else, and reaping an orphan is up to init, which may take a while).
func waitGroupGone(pg int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !groupAlive(pg) {
			return true
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pg), "stat")); err == nil && isZombie(stat) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. They are free when returned; the processes bind
// them right after, which is good enough on a test machine.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitFor polls ready every 100ms until it returns true, the process exits (an error with the end of its log)
// or ctx is done.
func waitFor(ctx context.Context, p *Process, what string, ready func(context.Context) bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok := ready(attempt)
		cancel()
		if ok {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited (%v); end of %s:\n%s", what, p.Err(), p.LogPath, p.Tail(3000))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; end of %s:\n%s", what, ctx.Err(), p.LogPath, p.Tail(3000))
		case <-tick.C:
		}
	}
}

// httpOK reports whether GET url answers 200.
func httpOK(ctx context.Context, client *http.Client, url string) bool {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
