"""Replays the boto3 calls of Airflow's EmrContainerOperator (amazon provider, EmrContainerHook) against an
emr-containers endpoint, as a DAG task would make them:

  execute:  submit_job -> start_job_run (configurationOverrides and tags default to {}, clientToken a UUID,
            retryPolicyConfiguration when job_retry_max_attempts is set), then poll_query_status ->
            describe_job_run until a terminal state; in a failure state, get_job_failure_reason ->
            describe_job_run's failureReason and stateDetails;
  on_kill:  stop_query -> cancel_job_run, then poll_query_status until a terminal state.

Three tasks run one after the other: "ok" (a retry policy and tags, must end COMPLETED), "fails" (must
end FAILED, with its failure reason read) and "killed" (cancelled once RUNNING; the hook counts
CANCEL_PENDING as final). The driving test plays each
driver: after a line "submitted <task> <job id>" it makes the driver succeed ("ok") or fail ("fails").
The last line is "result <JSON>" with each task's final state and failure reason.

Usage: airflow_emr_containers.py ENDPOINT VIRTUAL_CLUSTER_ID [POLL_SECONDS]; credentials from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), region us-east-1.
"""

import json
import sys
import time
import uuid

import boto3

INTERMEDIATE_STATES = ("PENDING", "SUBMITTED", "RUNNING")
FAILURE_STATES = ("FAILED", "CANCELLED", "CANCEL_PENDING")
TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "CANCEL_PENDING")
# Polling gives up after this many calls (the operator's max_polling_attempts).
MAX_POLLS = 600


class Hook:
    """The calls EmrContainerHook makes, on one virtual cluster."""

    def __init__(self, endpoint, virtual_cluster_id, poll_seconds):
        self.conn = boto3.client("emr-containers", endpoint_url=endpoint, region_name="us-east-1")
        self.virtual_cluster_id = virtual_cluster_id
        self.poll_seconds = poll_seconds

    def submit_job(self, name, execution_role_arn, release_label, job_driver, configuration_overrides=None,
                   client_request_token=None, tags=None, retry_max_attempts=None):
        params = {
            "name": name,
            "virtualClusterId": self.virtual_cluster_id,
            "executionRoleArn": execution_role_arn,
            "releaseLabel": release_label,
            "jobDriver": job_driver,
            "configurationOverrides": configuration_overrides or {},
            "tags": tags or {},
        }
        if client_request_token:
            params["clientToken"] = client_request_token
        if retry_max_attempts:
            params["retryPolicyConfiguration"] = {"maxAttempts": retry_max_attempts}
        response = self.conn.start_job_run(**params)
        if response["ResponseMetadata"]["HTTPStatusCode"] != 200:
            raise RuntimeError(f"Start Job Run failed: {response}")
        return response["id"]

    def check_query_status(self, job_id):
        try:
            return self.conn.describe_job_run(virtualClusterId=self.virtual_cluster_id, id=job_id)["jobRun"]["state"]
        except self.conn.exceptions.ResourceNotFoundException:
            raise RuntimeError(f"Job ID {job_id} not found on Virtual Cluster {self.virtual_cluster_id}")

    def poll_query_status(self, job_id, until=TERMINAL_STATES):
        for _ in range(MAX_POLLS):
            state = self.check_query_status(job_id)
            if state in until:
                return state
            time.sleep(self.poll_seconds)
        raise RuntimeError(f"job {job_id} still {state} after {MAX_POLLS} polls")

    def get_job_failure_reason(self, job_id):
        response = self.conn.describe_job_run(virtualClusterId=self.virtual_cluster_id, id=job_id)
        try:
            return f'{response["jobRun"]["failureReason"]} - {response["jobRun"]["stateDetails"]}'
        except KeyError:  # the hook logs and returns None (a cancelled run has no failureReason)
            return None

    def stop_query(self, job_id):
        return self.conn.cancel_job_run(virtualClusterId=self.virtual_cluster_id, id=job_id)


def main():
    endpoint, virtual_cluster_id = sys.argv[1], sys.argv[2]
    hook = Hook(endpoint, virtual_cluster_id, float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
    job_driver = {"sparkSubmitJobDriver": {
        "entryPoint": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
        "entryPointArguments": ["1000"],
        "sparkSubmitParameters": "--class org.apache.spark.examples.SparkPi --conf spark.executor.instances=2",
    }}
    results = {}
    for task, retries in (("ok", 2), ("fails", None), ("killed", None)):
        job_id = hook.submit_job(f"airflow-{task}", "arn:aws:iam::152324983118:role/emr-e2e-job-role", "spark-3.5.3",
                                 job_driver, client_request_token=str(uuid.uuid4()),
                                 tags={"dag": "etl", "task": task}, retry_max_attempts=retries)
        print("submitted", task, job_id, flush=True)
        if task == "killed":
            hook.poll_query_status(job_id, until=("RUNNING",) + TERMINAL_STATES)
            response = hook.stop_query(job_id)
            if response["ResponseMetadata"]["HTTPStatusCode"] != 200:
                raise RuntimeError(f"cancel_job_run answered {response}")
        state = hook.poll_query_status(job_id)
        result = {"id": job_id, "state": state}
        if state in FAILURE_STATES:
            result["failureReason"] = hook.get_job_failure_reason(job_id)
        results[task] = result
    print("result", json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
