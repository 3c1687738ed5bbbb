"""Schemathesis hooks of the conformance test (conformance_test.go).

Each REST operation's schema is the contract in proto/ (buf.validate rules
written into the OpenAPI documents by protoc-gen-openapiv2-protovalidate).
A few rules of the contract depend on something a Swagger 2.0 schema cannot
state: the server's clock, or two fields at once. The documents state them
in words ("Rule: ..." and field descriptions). For schema-valid (positive)
cases only, these hooks move generated values inside those rules, so that
"schema-valid request rejected" keeps meaning what it says. They widen no
check and touch no negative case; each rule stays tested by the services'
own tests (feedback_test.go, contract_test.go).
"""

from datetime import datetime, timedelta, timezone

import schemathesis
from schemathesis import GenerationMode


def _positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def map_case(ctx, case):
    if not _positive(case) or ctx.operation is None:
        return case
    label = f"{ctx.operation.method.upper()} {ctx.operation.path}"
    if label == "POST /v1/events" and isinstance(case.body, dict):
        for event in case.body.get("events") or []:
            if not isinstance(event, dict):
                continue
            # Event.event_time: within the window the server remembers event
            # ids, by its clock (libs/eventstream.Validate).
            if isinstance(event.get("eventTime"), str):
                event["eventTime"] = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
            # Event: "arm is required when experiment_id is set".
            if event.get("experimentId") and not event.get("arm"):
                event["arm"] = "control"
    if label == "GET /v1/experiments/{experimentId}/report" and isinstance(case.query, dict):
        # GetExperimentReportRequest: "at least one arm needs a positive
        # weight" when weights are given.
        weights = {k: v for k, v in case.query.items() if k.startswith("armWeights[")}
        if weights and all(_number(v) == 0 for v in weights.values()):
            case.query[next(iter(weights))] = 1
    return case


def _number(v):
    if isinstance(v, list):
        return sum(_number(x) for x in v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
