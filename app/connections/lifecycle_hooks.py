"""The connection service's calls into app/lifecycle/switch.py, imported on first use (the
lifecycle module reaches the webhook appliers, which look connections up through the service)."""

from __future__ import annotations

from typing import Any


async def refuse_while_running(*args: Any) -> None:
    from app.lifecycle import switch

    await switch.refuse_while_running(*args)


async def settle_before_change(*args: Any) -> int:
    from app.lifecycle import switch

    return await switch.settle_before_change(*args)


async def tie_to_tenant(*args: Any) -> None:
    from app.lifecycle import switch

    await switch.tie_to_tenant(*args)


async def adopt_orphans(*args: Any) -> int:
    from app.lifecycle import switch

    return await switch.adopt_orphans(*args)
