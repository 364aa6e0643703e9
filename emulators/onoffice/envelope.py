"""onOffice's answers: the top-level error envelope, an action's result and its in-band error."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ActionError(Exception):
    def __init__(self, errorcode: int, message: str) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.message = message


def top_error(errorcode: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "status": {"code": 400, "errorcode": errorcode, "message": message},
            "response": {"results": []},
        }
    )


def result(
    action: dict[str, Any], records: list[dict[str, Any]], cnt: int | None
) -> dict[str, Any]:
    verb = str(action.get("actionid", "")).rsplit(":", 1)[-1]
    return {
        "actionid": action.get("actionid"),
        "resourceid": action.get("resourceid", ""),
        "resourcetype": action.get("resourcetype"),
        "cacheable": verb in ("read", "get"),
        "identifier": action.get("identifier", ""),
        "data": {"meta": {"cntabsolute": cnt}, "records": records},
        "status": {"errorcode": 0, "message": "OK"},
    }


def error_result(action: Any, errorcode: int, message: str) -> dict[str, Any]:
    action = action if isinstance(action, dict) else {}
    answer = result(action, [], None)
    answer["status"] = {"errorcode": errorcode, "message": message}
    return answer
