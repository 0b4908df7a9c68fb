package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sparkplace/sparkplace/policies"
	"github.com/sparkplace/sparkplace/webhook"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Evaluate and test placement policies without a cluster",
	}
	cmd.AddCommand(newPolicyEvalCmd(), newPolicyTestCmd())
	return cmd
}

func newPolicyEvalCmd() *cobra.Command {
	var (
		pf      policyFlags
		podFile string
		objects string
		output  string
	)
	cmd := &cobra.Command{
		Use:   "eval --pod POD.yaml [--objects CLUSTER.yaml] [--policy-dir DIR] [--config CONFIG.yaml] [--guardrails GUARDRAILS.yaml] [-o yaml|json|patch|explain|input]",
		Short: "Place one pod exactly as the webhook would",
		Long: `Runs the webhook's own code path on one pod, with the cluster state (Nodes, Pods, Namespaces, DaemonSets) read
from --objects instead of informers. A pod without a namespace is evaluated in "default". -o input prints
the policy input the webhook builds for the pod (also when it is denied), for opa eval -i or a test fixture.

Exit codes: 0 allowed, 3 denied by the policy, 2 bad input (unreadable or non-pod input, a pod without
spark-role=driver|executor, a policy that does not compile, fails at runtime or breaks a guardrail).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if podFile == "" {
				return &exitError{code: exitBadInput, err: errors.New("--pod is required")}
			}
			pod, err := readInput(podFile, webhook.DecodePod)
			if err != nil {
				return err
			}
			cluster := webhook.EmptyCluster()
			if objects != "" {
				if cluster, err = readInput(objects, webhook.ObjectsState); err != nil {
					return err
				}
			}
			engine, err := pf.engine(cmd.Context(), nil)
			if err != nil {
				return err
			}
			placer := &webhook.Placer{Engine: engine, Cluster: cluster}
			out, err := webhook.Evaluate(cmd.Context(), placer, pod, webhook.OutputFormat(output), cmd.OutOrStdout())
			var perr *webhook.PolicyError
			switch {
			case errors.Is(err, webhook.ErrBadInput), errors.As(err, &perr):
				return &exitError{code: exitBadInput, err: err}
			case err != nil:
				return err
			case out.Denied():
				return &exitError{code: exitDenied, err: fmt.Errorf("denied: %v", out.Decision.Deny)}
			}
			return nil
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&podFile, "pod", "", "the pod, YAML or JSON (- for stdin)")
	cmd.Flags().StringVar(&objects, "objects", "", "cluster state: Nodes, Pods, Namespaces and DaemonSets, YAML documents or a List")
	cmd.Flags().StringVarP(&output, "output", "o", string(webhook.OutputYAML), "yaml or json (the placed pod), patch (the webhook's JSON patch), explain (for people), input (the policy input, for opa eval -i or a test fixture)")
	return cmd
}

// readInput reads a file (or stdin for "-") and decodes it, turning every failure into a bad-input exit.
func readInput[T any](name string, decode func(string, []byte) (T, error)) (T, error) {
	var zero T
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return zero, &exitError{code: exitBadInput, err: err}
	}
	v, err := decode(name, data)
	if err != nil {
		return zero, &exitError{code: exitBadInput, err: err}
	}
	return v, nil
}

func newPolicyTestCmd() *cobra.Command {
	var (
		opts      policies.TestOptions
		threshold float64
		format    string
	)
	cmd := &cobra.Command{
		Use:   "test [DIR] [--config FILE] [-v] [-r REGEX] [--coverage [--threshold PERCENT]] [--format text|json]",
		Short: "Run the bundle's Rego unit tests, with DIR's policies and tests merged in",
		Long: `Runs every test_* rule of the embedded bundle and of DIR (its *.rego files and data files, merged as
--policy-dir merges them), against the config defaults or --config FILE merged over them. The embedded tests
always run, so a policy in DIR that breaks them fails the run. The report is OPA's (opa test); the last line
counts passed, failed, errored and skipped tests.

Exit codes: 0 every test passed (and coverage is at least --threshold), 1 a test failed or errored,
2 bad input (a policy that does not compile, an unreadable DIR or config, a bad flag), 4 coverage below
--threshold.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.PolicyDir = args[0]
			}
			switch format {
			case "text":
			case "json":
				opts.JSON = true
			default:
				return &exitError{code: exitBadInput, err: fmt.Errorf("unknown --format %q (want text or json)", format)}
			}
			if threshold < 0 || threshold > 100 {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--threshold %v: want a percentage from 0 to 100", threshold)}
			}
			if cmd.Flags().Changed("threshold") {
				opts.Coverage = true
			}
			rep, err := policies.RunTests(cmd.Context(), opts, cmd.OutOrStdout())
			switch {
			case err != nil:
				return &exitError{code: exitBadInput, err: err}
			case !rep.OK():
				return &exitError{code: exitTestsFailed, err: fmt.Errorf("%d Rego test(s) failed, %d errored", rep.Failed, rep.Errored)}
			case rep.Coverage != nil && *rep.Coverage < threshold:
				return &exitError{code: exitCoverageLow, err: fmt.Errorf("coverage %.2f%% is below --threshold %v%%", *rep.Coverage, threshold)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.ConfigFile, "config", "", "YAML or JSON file merged over data.sparkplace.config, as the webhook's --config")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "list every test; for a failing one, the expression that failed and its variables")
	cmd.Flags().StringVarP(&opts.Run, "run", "r", "", "run only tests whose name (data.<package>.<rule>) matches this regular expression")
	cmd.Flags().BoolVar(&opts.Coverage, "coverage", false, "report the policy lines the tests evaluate, per file, and those they miss")
	cmd.Flags().Float64Var(&threshold, "threshold", 0, "fail (exit 4) when coverage is below this percentage; implies --coverage")
	cmd.Flags().StringVar(&format, "format", "text", "text (OPA's report) or json ({summary, tests, coverage})")
	return cmd
}
