"""Function tools the assistant can call, and the record of each call."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ToolHandler = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    """One function tool: its JSON-schema parameters and the coroutine that runs it."""

    name: str
    description: str
    parameters: dict[str, Any]
    handler: ToolHandler

    def spec(self) -> dict[str, Any]:
        """The Realtime session's ``tools[]`` entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class ToolCall:
    """A call the assistant made and what it returned (stored with the call)."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    output: str
    ok: bool


@dataclass
class Toolbox:
    """The tools of one assistant, run by name with their arguments as JSON text."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, tool: Tool) -> None:
        """Register a tool (replacing one of the same name)."""
        self.tools[tool.name] = tool

    def specs(self) -> list[dict[str, Any]]:
        """Every tool's session entry."""
        return [tool.spec() for tool in self.tools.values()]

    async def run(self, call_id: str, name: str, arguments: str) -> ToolCall:
        """Run one call; a bad name, bad JSON or a failing handler gives an error output."""
        try:
            parsed = json.loads(arguments or "{}")
            if not isinstance(parsed, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            logger.warning("tool %s called with bad arguments %r: %s", name, arguments, exc)
            return ToolCall(
                call_id, name, {}, json.dumps({"error": f"bad arguments: {exc}"}), False
            )
        tool = self.tools.get(name)
        if tool is None:
            logger.warning("the assistant called an unknown tool %r", name)
            return ToolCall(call_id, name, parsed, json.dumps({"error": f"no tool {name}"}), False)
        try:
            output = await tool.handler(parsed)
        except Exception as exc:
            logger.exception("tool %s failed", name)
            return ToolCall(call_id, name, parsed, json.dumps({"error": str(exc)}), False)
        return ToolCall(call_id, name, parsed, output, True)


def transfer_to_human_tool(on_transfer: Callable[[str, str], Awaitable[None]]) -> Tool:
    """``transfer_to_human``: hand the call to a human agent, with a summary for that person."""

    async def handler(arguments: dict[str, Any]) -> str:
        reason = str(arguments.get("reason") or "the caller asked for a person")
        summary = str(arguments.get("summary") or "").strip()[:1000]
        await on_transfer(reason, summary)
        return json.dumps({"status": "transferring", "reason": reason})

    return Tool(
        name="transfer_to_human",
        description="Hand the call over to a human agent. Use when the caller asks for a "
        "person or when you cannot help.",
        parameters={
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why, in a few words"},
                "summary": {
                    "type": "string",
                    "description": "For the agent who takes the call, two or three short "
                    "sentences: who is calling, what they want, what your tools found.",
                },
            },
            "required": ["reason", "summary"],
        },
        handler=handler,
    )


def lookup_case_tool(
    cases: Mapping[str, str], on_lookup: Callable[[str], None] | None = None
) -> Tool:
    """``lookup_case``: find a case by the reference number the caller gave."""

    async def handler(arguments: dict[str, Any]) -> str:
        reference = re.sub(r"\D", "", str(arguments.get("reference", "")))
        if on_lookup is not None:
            on_lookup(reference)
        status = cases.get(reference)
        if status is None:
            return json.dumps({"reference": reference, "found": False})
        return json.dumps({"reference": reference, "found": True, "status": status})

    return Tool(
        name="lookup_case",
        description="Look up a case by its reference number (digits only).",
        parameters={
            "type": "object",
            "properties": {"reference": {"type": "string", "description": "The digits"}},
            "required": ["reference"],
        },
        handler=handler,
    )
