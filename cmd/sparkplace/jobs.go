package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparkplace/sparkplace/submit"
)

func newJobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, describe and cancel job runs",
		Long: `Job runs with EMR's states: PENDING, SUBMITTED (driver pod created), RUNNING (driver container running),
COMPLETED (driver exited 0), FAILED (with failureReason and stateDetails from the driver's exit code),
CANCEL_PENDING and CANCELLED. Job runs are JobRun objects (sparkplace.io); the controller records their state
from the driver pod and keeps it after the pod is gone. These commands only read, except cancel, which asks
the controller to stop the run.`,
	}
	cmd.AddCommand(newJobsListCmd(), newJobsDescribeCmd(), newJobsCancelCmd())
	return cmd
}

func newJobsListCmd() *cobra.Command {
	var (
		sf     submitterFlags
		vcID   string
		states []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "list [--virtual-cluster-id ID] [--state S]... [-o json|table]",
		Short: "List job runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := submit.ListJobRunsOptions{VirtualClusterID: vcID}
			for _, s := range states {
				st := submit.State(strings.ToUpper(s))
				if !contains(submit.States, st) {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--state %s: not one of %v", s, submit.States)}
				}
				opts.States = append(opts.States, st)
			}
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			runs, err := s.ListJobRuns(cmd.Context(), opts)
			if err != nil {
				return submitErr(err)
			}
			switch output {
			case "json":
				if runs == nil {
					runs = []submit.JobRun{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"jobRuns": runs})
			case "table":
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tVIRTUAL CLUSTER\tSTATE\tCREATED\tDETAILS")
				for _, r := range runs {
					details := r.StateDetails
					if r.FailureReason != "" {
						details = r.FailureReason + ": " + details
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.VirtualClusterID, r.State, r.CreatedAt.Format(time.RFC3339), details)
				}
				return tw.Flush()
			default:
				return &exitError{code: exitBadInput, err: fmt.Errorf("-o %s: use json or table", output)}
			}
		},
	}
	cmd.Flags().StringVar(&vcID, "virtual-cluster-id", "", "only this virtual cluster (default: all)")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (repeatable or comma-separated)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "json (ListJobRuns' shape) or table")
	sf.register(cmd.Flags())
	return cmd
}

func newJobsDescribeCmd() *cobra.Command {
	var (
		sf   submitterFlags
		vcID string
	)
	cmd := &cobra.Command{
		Use:   "describe ID [--virtual-cluster-id ID]",
		Short: "Print a job run as DescribeJobRun does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			run, err := s.DescribeJobRun(cmd.Context(), vcID, args[0])
			if err != nil {
				return submitErr(err)
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"jobRun": run})
		},
	}
	cmd.Flags().StringVar(&vcID, "virtual-cluster-id", "", "virtual cluster of the job run (default: search all)")
	sf.register(cmd.Flags())
	return cmd
}

func newJobsCancelCmd() *cobra.Command {
	var (
		sf   submitterFlags
		vcID string
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cancel ID [--virtual-cluster-id ID] [--wait DURATION]",
		Short: "Cancel a job run: delete its driver and executors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.submitter(false)
			if err != nil {
				return err
			}
			run, err := s.CancelJobRun(cmd.Context(), vcID, args[0])
			if err != nil {
				return submitErr(err)
			}
			deadline := time.Now().Add(wait)
			for run.State == submit.StateCancelPending && time.Now().Before(deadline) {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(time.Second):
				}
				if run, err = s.DescribeJobRun(cmd.Context(), vcID, args[0]); err != nil {
					return submitErr(err)
				}
			}
			return printJSON(cmd.OutOrStdout(), map[string]string{"id": run.ID, "virtualClusterId": run.VirtualClusterID, "state": string(run.State)})
		},
	}
	cmd.Flags().StringVar(&vcID, "virtual-cluster-id", "", "virtual cluster of the job run (default: search all)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for CANCELLED")
	sf.register(cmd.Flags())
	return cmd
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
