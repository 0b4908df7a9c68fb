package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/controller"
	"github.com/sparkplace/sparkplace/submit"
	"github.com/sparkplace/sparkplace/submit/podtemplate"
)

// submitterFlags are the settings every submitter command shares.
type submitterFlags struct {
	kubeconfig      string
	region          string
	accountID       string
	releaseTable    string
	registryAccount string
	sparkUser       string
}

func (f *submitterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	fs.StringVar(&f.region, "region", "us-east-1", "AWS region used in ARNs and to pick EMR's image registry")
	fs.StringVar(&f.accountID, "account-id", "000000000000", "AWS account id used in ARNs")
	fs.StringVar(&f.releaseTable, "release-table", "", "YAML file mapping releaseLabel to {image, sparkVersion} (default: spark-X.Y.Z → apache/spark, emr-X.Y.Z-latest → EMR's ECR image)")
	fs.StringVar(&f.registryAccount, "image-registry-account", "", "ECR account of EMR images (default: the one AWS documents for --region)")
	fs.StringVar(&f.sparkUser, "spark-user", "spark", "SPARK_USER of the driver")
}

// submitter builds a Submitter; with offline set it has no cluster client (dry runs).
func (f *submitterFlags) submitter(offline bool) (*submit.Submitter, error) {
	opts := submit.Options{Region: f.region, AccountID: f.accountID, SparkUser: f.sparkUser}
	if f.releaseTable != "" {
		file, err := os.Open(f.releaseTable)
		if err != nil {
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--release-table: %w", err)}
		}
		defer file.Close()
		if opts.Releases, err = submit.LoadReleaseTable(file); err != nil {
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--release-table %s: %w", f.releaseTable, err)}
		}
	}
	if opts.Releases.Region == "" {
		opts.Releases.Region = f.region
	}
	if f.registryAccount != "" {
		opts.Releases.RegistryAccount = f.registryAccount
	}
	if !offline {
		scheme, err := controller.Scheme()
		if err != nil {
			return nil, err
		}
		cfg, err := restConfig(f.kubeconfig)
		if err != nil {
			return nil, err
		}
		if opts.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
			return nil, fmt.Errorf("creating Kubernetes client: %w", err)
		}
		opts.Namespace = kubeconfigNamespace(f.kubeconfig)
	}
	return submit.New(opts), nil
}

// submitErr gives request problems the bad-input exit code.
func submitErr(err error) error {
	if submit.IsValidation(err) || submit.IsNotFound(err) {
		return &exitError{code: exitBadInput, err: err}
	}
	return err
}

func newSubmitCmd() *cobra.Command {
	var (
		sf        submitterFlags
		tf        podTemplateFlags
		rf        submit.RequestFlags
		jobRun    string
		dryRun    bool
		namespace string
	)
	cmd := &cobra.Command{
		Use:   "submit [--job-run FILE|-] [--virtual-cluster-id ID --name N --execution-role-arn ARN --release-label L --job-driver JSON ...]",
		Short: "Start a Spark job run from an EMR StartJobRun request",
		Long: `Takes an Amazon EMR on EKS StartJobRun request, from --job-run (a file, or - for stdin) and/or the flags of
'aws emr-containers start-job-run' (flags override the file), checks it against the virtual cluster's policy,
and creates a JobRun (sparkplace.io) with your own Kubernetes credentials. The controller then creates what
spark-submit --deploy-mode cluster creates: the driver pod, its spark.properties ConfigMap and headless
Service. Prints {id, name, arn, virtualClusterId} as JSON.

Pod templates (spark.kubernetes.{driver,executor}.podTemplateFile) are fetched now: s3:// with your AWS
credentials (the SDK's default chain), configmap://name/key from the run's namespace with your Kubernetes
access, local paths from --pod-template-dir (default: the current directory).

With --dry-run no cluster is contacted (S3 and local pod templates are still read): the JobRun and the
driver's objects are printed as YAML for --namespace.

Exit codes: 0 submitted (or the clientToken's earlier job run returned), 2 invalid request, refused by the
virtual cluster's policy, or unknown virtual cluster (nothing is created), 1 anything else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &submit.StartJobRunRequest{}
			if jobRun != "" {
				var err error
				if req, err = readJobRun(jobRun, cmd.InOrStdin()); err != nil {
					return submitErr(err)
				}
			}
			if err := rf.Apply(req); err != nil {
				return submitErr(err)
			}
			s, err := sf.submitter(dryRun)
			if err != nil {
				return err
			}
			opts := s.Options()
			if err := tf.apply(cmd.Context(), &opts, sf.region); err != nil {
				return err
			}
			s = submit.New(opts)
			if dryRun {
				plan, err := s.DryRun(req, namespace)
				if err != nil {
					return submitErr(err)
				}
				printWarnings(cmd.ErrOrStderr(), plan.Warnings)
				out, err := plan.YAML()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			if namespace != "" {
				return &exitError{code: exitBadInput, err: errors.New("--namespace is only for --dry-run: a job run goes to its virtual cluster's namespace")}
			}
			sub, err := s.StartJobRun(cmd.Context(), req)
			if err != nil {
				return submitErr(err)
			}
			printWarnings(cmd.ErrOrStderr(), sub.Warnings)
			if sub.Existing {
				fmt.Fprintf(cmd.ErrOrStderr(), "clientToken already used: returning job run %s, nothing created\n", sub.Response.ID)
			}
			return printJSON(cmd.OutOrStdout(), sub.Response)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&jobRun, "job-run", "", "StartJobRun request body as JSON: a file, or - for stdin")
	fs.StringVar(&rf.VirtualClusterID, "virtual-cluster-id", "", "virtual cluster to run in")
	fs.StringVar(&rf.Name, "name", "", "job run name")
	fs.StringVar(&rf.ExecutionRoleARN, "execution-role-arn", "", "IAM role the driver and executors run as (IRSA annotation on their ServiceAccount)")
	fs.StringVar(&rf.ReleaseLabel, "release-label", "", "release label, e.g. emr-7.6.0-latest or spark-3.5.3")
	fs.StringVar(&rf.JobDriver, "job-driver", "", `job driver JSON: {"sparkSubmitJobDriver": {"entryPoint": ..., "entryPointArguments": [...], "sparkSubmitParameters": ...}}`)
	fs.StringVar(&rf.ConfigurationOverrides, "configuration-overrides", "", `configuration overrides JSON: {"applicationConfiguration": [{"classification": "spark-defaults", "properties": {...}}]}`)
	fs.StringVar(&rf.ClientToken, "client-token", "", "idempotency token: the same token returns the same job run (default: random)")
	fs.BoolVar(&dryRun, "dry-run", false, "print the objects as YAML instead of creating them; needs no cluster")
	fs.StringVar(&namespace, "namespace", "", "namespace for --dry-run")
	sf.register(fs)
	tf.register(fs, ".", "the directory local pod template paths may name (relative paths are taken from it)")
	return cmd
}

func readJobRun(path string, stdin io.Reader) (*submit.StartJobRunRequest, error) {
	if path == "-" {
		return submit.DecodeStartJobRun(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--job-run: %w", err)}
	}
	defer f.Close()
	req, err := submit.DecodeStartJobRun(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return req, nil
}

func printWarnings(w io.Writer, warnings []string) {
	for _, msg := range warnings {
		fmt.Fprintln(w, "warning:", msg)
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// kubeconfigNamespace is the namespace of the kubeconfig's current context ("" when it names none).
func kubeconfigNamespace(kubeconfig string) string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil {
		return ""
	}
	return ns
}

// podTemplateFlags say where a submitter may fetch pod templates from.
type podTemplateFlags struct {
	dir        string
	s3Endpoint string
	maxBytes   int64
}

// register adds the flags; dir is the default template directory ("" refuses local paths).
func (f *podTemplateFlags) register(fs *pflag.FlagSet, dir, dirHelp string) {
	fs.StringVar(&f.dir, "pod-template-dir", dir, dirHelp)
	fs.StringVar(&f.s3Endpoint, "s3-endpoint-url", "", "S3-compatible endpoint for s3:// pod templates (MinIO; path-style addressing); default: AWS S3 in --region (AWS_ENDPOINT_URL_S3 works too)")
	fs.Int64Var(&f.maxBytes, "pod-template-max-bytes", podtemplate.DefaultMaxBytes, "largest pod template accepted, in bytes")
}

// apply sets opts' template fetcher: S3 with the AWS SDK's default credential chain (IRSA in a cluster).
func (f *podTemplateFlags) apply(ctx context.Context, opts *submit.Options, region string) error {
	if f.maxBytes <= 0 || f.maxBytes > podtemplate.DefaultMaxBytes {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--pod-template-max-bytes %d must be from 1 to %d", f.maxBytes, podtemplate.DefaultMaxBytes)}
	}
	opts.PodTemplates.MaxBytes = f.maxBytes
	if f.dir != "" {
		dir, err := filepath.Abs(f.dir)
		if err != nil {
			return &exitError{code: exitBadInput, err: fmt.Errorf("--pod-template-dir: %w", err)}
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return &exitError{code: exitBadInput, err: fmt.Errorf("--pod-template-dir %s is not a directory", f.dir)}
		}
		opts.PodTemplates.Dir = dir
	}
	c, err := podtemplate.NewS3Client(ctx, region, f.s3Endpoint)
	if err != nil {
		return err
	}
	opts.PodTemplates.S3 = c
	return nil
}
