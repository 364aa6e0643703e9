"""Request dependencies: the transaction owner and the shared resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.resources import Resources


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_app_settings(request: Request) -> Settings:
    return get_resources(request).settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and transaction per request: commit on success, then send buffered jobs;
    roll back and drop the jobs on any error."""
    resources = get_resources(request)
    async with resources.transaction() as session:
        yield session


# scope="function": commit (and send the jobs) before the response goes out, so a client that
# got 2xx can rely on the change; with the default scope FastAPI would commit after sending.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
