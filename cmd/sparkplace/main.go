// Command sparkplace is the one sparkplace binary: the admission webhook, the policy tools, and the
// submitter. It only parses flags and wires packages together.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a documented exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by the subcommands.
const (
	exitTestsFailed = 1 // policy test: a Rego test failed or errored
	exitBadInput    = 2 // unreadable or unusable input, including a broken policy
	exitDenied      = 3 // the policy denied the pod
	exitCoverageLow = 4 // policy test: coverage below --threshold
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sparkplace",
		Short:         "Spark pod placement for Kubernetes, decided by Rego policies",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newWebhookCmd(),
		newPolicyCmd(),
		newNodeAgentCmd(),
		newSubmitCmd(), newJobsCmd(), newVCCmd(), newAPICmd(), newControllerCmd(),
	)
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "sparkplace:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}
