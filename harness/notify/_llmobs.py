"""A run as a Datadog LLM Observability experiment (opt-in: `llm_observability: true`).

Datadog models an experiment as project → dataset → experiment → spans (one per record)
and evaluation metrics. We map a suite to a project and a dataset of the same name (found
by name, created when missing), each run to an experiment, each case result to a span
(input = what the caller said, output = the agent's last answer) and its verdict to a
boolean metric `passed`.

These endpoints are marked unstable in datadog-api-client; `datadog.configuration`
enables exactly the operations used here (listed in `OPERATIONS`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

OPERATIONS = (
    "list_llm_obs_projects",
    "create_llm_obs_project",
    "list_llm_obs_datasets",
    "create_llm_obs_dataset",
    "create_llm_obs_experiment",
    "create_llm_obs_experiment_events",
)


def _hex_id(*parts: Any, size: int = 16) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:size]


def _named(found: Any, name: str) -> str | None:
    """The id of the item called exactly `name` in a list answer, or None."""
    for item in found.data or []:
        if item.attributes.name == name:
            return item.id
    return None


def _project_id(api: Any, name: str) -> str:
    from datadog_api_client.v2.model.llm_obs_project_data_attributes_request import LLMObsProjectDataAttributesRequest
    from datadog_api_client.v2.model.llm_obs_project_data_request import LLMObsProjectDataRequest
    from datadog_api_client.v2.model.llm_obs_project_request import LLMObsProjectRequest
    from datadog_api_client.v2.model.llm_obs_project_type import LLMObsProjectType

    known = _named(api.list_llm_obs_projects(filter_name=name), name)
    if known is not None:
        return known
    body = LLMObsProjectRequest(data=LLMObsProjectDataRequest(
        type=LLMObsProjectType.PROJECTS,
        attributes=LLMObsProjectDataAttributesRequest(name=name, description="harness suite"),
    ))
    return api.create_llm_obs_project(body=body).data.id


def _dataset_id(api: Any, project_id: str, name: str) -> str:
    from datadog_api_client.v2.model.llm_obs_dataset_data_attributes_request import LLMObsDatasetDataAttributesRequest
    from datadog_api_client.v2.model.llm_obs_dataset_data_request import LLMObsDatasetDataRequest
    from datadog_api_client.v2.model.llm_obs_dataset_request import LLMObsDatasetRequest
    from datadog_api_client.v2.model.llm_obs_dataset_type import LLMObsDatasetType

    known = _named(api.list_llm_obs_datasets(project_id, filter_name=name), name)
    if known is not None:
        return known
    body = LLMObsDatasetRequest(data=LLMObsDatasetDataRequest(
        type=LLMObsDatasetType.DATASETS,
        attributes=LLMObsDatasetDataAttributesRequest(name=name, description="harness golden cases"),
    ))
    return api.create_llm_obs_dataset(project_id, body=body).data.id


def send_experiment(api_client: Any, body: dict[str, Any]) -> str:
    """Create the experiment and push its spans and metrics; returns the experiment id."""
    from datadog_api_client.v2.api.agent_observability_api import AgentObservabilityApi
    from datadog_api_client.v2.model.llm_obs_event_type import LLMObsEventType
    from datadog_api_client.v2.model.llm_obs_experiment_data_attributes_request import (
        LLMObsExperimentDataAttributesRequest,
    )
    from datadog_api_client.v2.model.llm_obs_experiment_data_request import LLMObsExperimentDataRequest
    from datadog_api_client.v2.model.llm_obs_experiment_events_data_attributes_request import (
        LLMObsExperimentEventsDataAttributesRequest,
    )
    from datadog_api_client.v2.model.llm_obs_experiment_events_data_request import LLMObsExperimentEventsDataRequest
    from datadog_api_client.v2.model.llm_obs_experiment_events_request import LLMObsExperimentEventsRequest
    from datadog_api_client.v2.model.llm_obs_experiment_metric import LLMObsExperimentMetric
    from datadog_api_client.v2.model.llm_obs_experiment_request import LLMObsExperimentRequest
    from datadog_api_client.v2.model.llm_obs_experiment_span import LLMObsExperimentSpan
    from datadog_api_client.v2.model.llm_obs_experiment_span_meta import LLMObsExperimentSpanMeta
    from datadog_api_client.v2.model.llm_obs_experiment_span_status import LLMObsExperimentSpanStatus
    from datadog_api_client.v2.model.llm_obs_experiment_type import LLMObsExperimentType
    from datadog_api_client.v2.model.llm_obs_metric_score_type import LLMObsMetricScoreType

    api = AgentObservabilityApi(api_client)
    project_id = _project_id(api, body["project"])
    dataset_id = _dataset_id(api, project_id, body["dataset"])
    request = LLMObsExperimentRequest(data=LLMObsExperimentDataRequest(
        type=LLMObsExperimentType.EXPERIMENTS,
        attributes=LLMObsExperimentDataAttributesRequest(
            name=body["experiment"], project_id=project_id, dataset_id=dataset_id,
            metadata={"verdict": body.get("verdict")},
        ),
    ))
    experiment_id = api.create_llm_obs_experiment(body=request).data.id
    trace_id = _hex_id(body["experiment"], size=32)
    spans, metrics = [], []
    now_ms = int(time.time() * 1000)
    for s in body.get("spans") or []:
        span_id = _hex_id(body["experiment"], s["case_id"], s["repeat"])
        spans.append(LLMObsExperimentSpan(
            name=s["case_id"], span_id=span_id, trace_id=trace_id, project_id=project_id, dataset_id=dataset_id,
            start_ns=int(s["start_ns"]), duration=int(s["duration_ns"]),
            status=LLMObsExperimentSpanStatus(s["status"]),
            meta=LLMObsExperimentSpanMeta(input=s.get("input") or "", output=s.get("output") or ""),
            tags=[f"topic:{s['topic']}"],
        ))
        metrics.append(LLMObsExperimentMetric(
            label="passed", metric_type=LLMObsMetricScoreType.BOOLEAN, span_id=span_id, timestamp_ms=now_ms,
            boolean_value=bool(s["passed"]), **({"reasoning": s["reason"]} if s.get("reason") else {}),
        ))
    events = LLMObsExperimentEventsRequest(data=LLMObsExperimentEventsDataRequest(
        type=LLMObsEventType.EVENTS,
        attributes=LLMObsExperimentEventsDataAttributesRequest(spans=spans, metrics=metrics),
    ))
    api.create_llm_obs_experiment_events(experiment_id, body=events)
    return experiment_id
