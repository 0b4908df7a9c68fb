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
		Use:   "eval --pod POD.yaml [--objects CLUSTER.yaml] [--policy-dir DIR] [--config CONFIG.yaml] [-o yaml|json|patch|explain]",
		Short: "Place one pod exactly as the webhook would",
		Long: `Runs the webhook's own code path on one pod, with the cluster state (Nodes, driver Pods, Namespaces) read
from --objects instead of informers. A pod without a namespace is evaluated in "default".

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
	cmd.Flags().StringVar(&objects, "objects", "", "cluster state: Nodes, driver Pods and Namespaces, YAML documents or a List")
	cmd.Flags().StringVarP(&output, "output", "o", string(webhook.OutputYAML), "yaml or json (the placed pod), patch (the webhook's JSON patch), explain (for people)")
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
	return &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run Rego unit tests: the embedded bundle's own, or DIR's policies and *_test.rego",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			sum, err := policies.RunTests(cmd.Context(), dir, cmd.OutOrStdout())
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if !sum.OK() {
				return fmt.Errorf("%d Rego test(s) failed, %d errored", sum.Failed, sum.Errored)
			}
			return nil
		},
	}
}
