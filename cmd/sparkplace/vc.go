package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplace/sparkplace/submit"
)

func newVCCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "vc",
		Aliases: []string{"virtual-cluster"},
		Short:   "Register namespaces as EMR virtual clusters",
		Long: `A virtual cluster is a VirtualCluster object (sparkplace.io) in the namespace it opens to Spark job runs. The
namespace must carry the platform team's label sparkplace.io/virtual-clusters=true, and never be kube-* or
sparkplace's own. Its spec.policy limits what its runs may use (images, execution roles, service accounts,
volume types). Nothing is kept on local disk.`,
	}
	cmd.AddCommand(newVCCreateCmd(), newVCListCmd(), newVCDescribeCmd(), newVCDeleteCmd())
	return cmd
}

func newVCCreateCmd() *cobra.Command {
	var (
		sf        submitterFlags
		name      string
		namespace string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --namespace NS",
		Short: "Register a namespace the platform team opened (label sparkplace.io/virtual-clusters=true) as a virtual cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || namespace == "" {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--name and --namespace are required")}
			}
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			vc, err := s.CreateVirtualCluster(cmd.Context(), name, namespace)
			if err != nil {
				return submitErr(err)
			}
			return printJSON(cmd.OutOrStdout(), map[string]string{"id": vc.ID, "name": vc.Name, "arn": vc.ARN})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "virtual cluster name")
	cmd.Flags().StringVar(&namespace, "namespace", "", "namespace that backs it")
	sf.register(cmd.Flags())
	return cmd
}

func newVCListCmd() *cobra.Command {
	var (
		sf     submitterFlags
		states []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "list [--state RUNNING|TERMINATED] [-o json|table]",
		Short: "List virtual clusters, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for i, st := range states {
				states[i] = strings.ToUpper(st)
			}
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			vcs, err := s.ListVirtualClusters(cmd.Context(), states...)
			if err != nil {
				return submitErr(err)
			}
			switch output {
			case "json":
				if vcs == nil {
					vcs = []submit.VirtualCluster{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"virtualClusters": vcs})
			case "table":
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tNAMESPACE\tSTATE\tCREATED")
				for _, vc := range vcs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", vc.ID, vc.Name, vc.ContainerProvider.Info.EKSInfo.Namespace, vc.State, vc.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			default:
				return &exitError{code: exitBadInput, err: fmt.Errorf("-o %s: use json or table", output)}
			}
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "json (ListVirtualClusters' shape) or table")
	sf.register(cmd.Flags())
	return cmd
}

func newVCDescribeCmd() *cobra.Command {
	var sf submitterFlags
	cmd := &cobra.Command{
		Use:   "describe ID",
		Short: "Print a virtual cluster as DescribeVirtualCluster does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			vc, err := s.DescribeVirtualCluster(cmd.Context(), args[0])
			if err != nil {
				return submitErr(err)
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"virtualCluster": vc})
		},
	}
	sf.register(cmd.Flags())
	return cmd
}

func newVCDeleteCmd() *cobra.Command {
	var sf submitterFlags
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Terminate a virtual cluster (the namespace and its job-run history stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			vc, err := s.DeleteVirtualCluster(cmd.Context(), args[0])
			if err != nil {
				return submitErr(err)
			}
			return printJSON(cmd.OutOrStdout(), map[string]string{"id": vc.ID, "state": vc.State})
		},
	}
	sf.register(cmd.Flags())
	return cmd
}
