// Package api serves the emr-containers REST API (rest-json, version 2020-10-01) over a submit.Submitter,
// so the AWS CLI (`aws emr-containers --endpoint-url`), the AWS SDKs and Airflow's EmrContainerOperator can
// drive sparkplace unchanged. It owns only the HTTP mapping: paths, query parameters, pagination, and
// EMR's error shape ({"__type", "message"} plus the x-amzn-errortype header).
//
// Requests are not authenticated: SigV4 signatures are accepted without being checked, so the server must
// only be reachable by those allowed to start Spark jobs (it listens on localhost by default).
package api
