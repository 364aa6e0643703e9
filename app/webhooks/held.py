"""Held provider events: a burst of archives/deletes (Mailchimp "Archive All") waits for a user
to apply or dismiss it (`app.webhooks.outcomes.decide_held`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.decisions.service import DecisionRequest, decide
from app.deps import ResourcesDep, SessionDep
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.tenants.auth import CurrentTenant

router = APIRouter(
    prefix="/api/v1/held-events",
    tags=["provider webhooks"],
    responses=BEARER_RESPONSES | NO_CONNECTION,
)

Decision = Literal["apply", "dismiss"]
SUMMARIES: dict[Decision, str] = {
    "apply": "Apply a held burst of archives/deletes (each confirmed at the provider first)",
    "dismiss": "Dismiss a held burst of archives/deletes (onOffice stays as it is)",
}


class HeldDecision(BaseModel):
    decision: Decision
    events: int = Field(description="How many held events the decision covered")


def _endpoint(decision: Decision) -> Callable[..., Awaitable[HeldDecision]]:
    async def endpoint(
        tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
    ) -> HeldDecision:
        # The whole burst, recorded in the history with the user (app.decisions).
        body = DecisionRequest(action=decision)
        result = await decide(session, resources, tenant, "held_bursts", body)
        return HeldDecision(decision=decision, events=result.events)

    return endpoint


for _decision, _summary in SUMMARIES.items():
    router.add_api_route(
        f"/{_decision}",
        _endpoint(_decision),
        methods=["POST"],
        name=f"{_decision}_held",
        response_model=HeldDecision,
        summary=_summary,
    )
