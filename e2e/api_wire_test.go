package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers/types"

	"github.com/sparkplace/sparkplace/submit"
)

// TestAPIPagesStableUnderInserts pages job runs on the real control plane: a run started between two pages
// neither repeats nor hides a listed run, a page token is refused with other filters, and the AWS CLI,
// which follows nextToken itself, lists every run once with one run a page.
func TestAPIPagesStableUnderInserts(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	key := apiKey{"AKIAPAGES0000000000", "pages-secret", "pages@example.com"}
	url := startAPI(ctx, t, key)
	sdk := sdkFor(url, key)
	ns := tenantNamespace(t)
	bind(t, ns, "sparkplace-job-submitter", key.user)
	admin := newSubmitter(adminClient(t))
	vc, err := admin.CreateVirtualCluster(ctx, "pages", ns)
	if err != nil {
		t.Fatal(err)
	}
	start := func(token string) string {
		t.Helper()
		sub, err := admin.StartJobRun(ctx, sparkPi(vc.ID, token))
		if err != nil {
			t.Fatal(err)
		}
		return sub.Response.ID
	}
	var before []string
	for i := range 3 {
		before = append(before, start(fmt.Sprintf("page-%d", i)))
	}
	list := &emrcontainers.ListJobRunsInput{VirtualClusterId: aws.String(vc.ID), MaxResults: aws.Int32(2)}
	first, err := sdk.ListJobRuns(ctx, list)
	if err != nil || len(first.JobRuns) != 2 || first.NextToken == nil {
		t.Fatalf("first page: %v, %v; want 2 runs and a nextToken", first, err)
	}
	inserted := start("inserted")
	list.NextToken = first.NextToken
	second, err := sdk.ListJobRuns(ctx, list)
	if err != nil {
		t.Fatalf("second page: %v", err)
	}
	var seen []string
	for _, r := range append(first.JobRuns, second.JobRuns...) {
		id := aws.ToString(r.Id)
		if slices.Contains(seen, id) {
			t.Errorf("run %s listed twice across the pages", id)
		}
		seen = append(seen, id)
	}
	for _, id := range before {
		if !slices.Contains(seen, id) {
			t.Errorf("run %s, listed before the insert, is on neither page %v", id, seen)
		}
	}

	other := &emrcontainers.ListJobRunsInput{VirtualClusterId: aws.String(vc.ID), MaxResults: aws.Int32(2), NextToken: first.NextToken,
		States: []types.JobRunState{types.JobRunStateRunning}}
	var ve *types.ValidationException
	if _, err := sdk.ListJobRuns(ctx, other); !errors.As(err, &ve) || !strings.Contains(err.Error(), "other filters") {
		t.Errorf("a token used with other filters: %v, want a ValidationException", err)
	}

	out, err := awsCLI(t, url, key, "list-job-runs", "--virtual-cluster-id", vc.ID, "--page-size", "1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out["jobRuns"].([]any) {
		ids = append(ids, r.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	want := append(slices.Clone(before), inserted)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("aws emr-containers list-job-runs --page-size 1 = %v, want each of %v once", ids, want)
	}
}

// TestAPIRecreatedVirtualCluster: a deleted virtual cluster is TERMINATING, then TERMINATED; one re-created
// on the same namespace does not find the old cluster's runs by its new id, which still finds them by the
// old one.
func TestAPIRecreatedVirtualCluster(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	key := apiKey{"AKIARECREATE0000000", "recreate-secret", "recreate@example.com"}
	sdk := sdkFor(startAPI(ctx, t, key), key)
	ns := tenantNamespace(t)
	bind(t, ns, "sparkplace-job-submitter", key.user)
	admin := newSubmitter(adminClient(t))
	old, err := admin.CreateVirtualCluster(ctx, "first", ns)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := admin.StartJobRun(ctx, sparkPi(old.ID, "old"))
	if err != nil {
		t.Fatal(err)
	}
	run := sub.Response.ID
	if _, err := admin.CancelJobRun(ctx, old.ID, run); err != nil {
		t.Fatal(err)
	}
	waitJobRunState(t, admin, old.ID, run, submit.StateCancelled)
	deleted, err := admin.DeleteVirtualCluster(ctx, old.ID)
	if err != nil || deleted.State != submit.VirtualClusterTerminating {
		t.Fatalf("DeleteVirtualCluster = %+v, %v; want TERMINATING until the controller has looked", deleted, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		d, err := sdk.DescribeVirtualCluster(ctx, &emrcontainers.DescribeVirtualClusterInput{Id: aws.String(old.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if s := d.VirtualCluster.State; s == types.VirtualClusterStateTerminated {
			break
		} else if s != types.VirtualClusterStateTerminating || time.Now().After(deadline) {
			t.Fatalf("deleted virtual cluster is %s, want TERMINATING then TERMINATED", s)
		}
	}

	recreated, err := admin.CreateVirtualCluster(ctx, "second", ns)
	if err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: aws.String(recreated.ID), Id: aws.String(run)}); !errors.As(err, &nf) {
		t.Errorf("the old cluster's run by the new id: %v, want ResourceNotFoundException", err)
	}
	if list, err := sdk.ListJobRuns(ctx, &emrcontainers.ListJobRunsInput{VirtualClusterId: aws.String(recreated.ID)}); err != nil || len(list.JobRuns) != 0 {
		t.Errorf("the new cluster lists %v, %v; want no runs", list, err)
	}
	d, err := sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: aws.String(old.ID), Id: aws.String(run)})
	if err != nil || d.JobRun.State != types.JobRunStateCancelled {
		t.Errorf("the old run by the old id: %v, %v; want it, CANCELLED", d, err)
	}
}
