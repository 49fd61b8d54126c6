"""Follow-up sequences (``[sequence.NAME]`` with ``[[sequence.NAME.step]]`` in ``rules/*.toml``).

Step 0 is the acknowledgement. Steps are named so that a live edit applies to leads
already in a sequence by name: a removed step is skipped, never re-sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inboxwatch.userfiles.tomlfile import Section

CHANNELS = ("email", "call", "text")
_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Step:
    name: str
    day: int
    channel: str
    template: str
    #: Where the lead stands once this step is done: "" (unchanged) or "dormant".
    then: str = ""

    @property
    def is_email(self) -> bool:
        return self.channel == "email"


@dataclass(frozen=True)
class Sequence:
    name: str
    file: str
    steps: tuple[Step, ...]
    #: Days after the last step with no answer before the lead is closed as "no response".
    close_after_days: int = 7

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def ack(self) -> Step | None:
        return next((s for s in self.steps if s.is_email and s.day == 0), None)


def parse_sequence(name: str, sec: Section) -> Sequence:
    raw_steps = sec.get("step", list, [])
    steps: list[Step] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            sec.file.problem(sec.key(f"step.{i}"), "expected a table ([[sequence.NAME.step]])")
            continue
        ssec = Section(sec.file, raw, sec.key(f"step.{i}"))
        channel = ssec.choice("channel", CHANNELS, "email")
        step = Step(
            name=ssec.require("name", str, f"step-{i}"),
            day=ssec.require("day", int, 0),
            channel=channel,
            template=ssec.require("template", str, "") if channel == "email" else "",
            then=ssec.choice("then", ("", "dormant"), ""),
        )
        if channel != "email":
            step = Step(step.name, step.day, channel, ssec.get("template", str, ""), step.then)
        if not _STEP_NAME.match(step.name):
            ssec.file.problem(ssec.key("name"), "use letters, digits, - and _")
        if step.name in seen:
            ssec.file.problem(ssec.key("name"), f"duplicate step name {step.name!r}")
        seen.add(step.name)
        if step.day < 0:
            ssec.file.problem(ssec.key("day"), "must not be negative")
        if steps and step.day < steps[-1].day:
            ssec.file.problem(ssec.key("day"), "steps must be in day order")
        ssec.get("description", str, "")
        ssec.finish()
        steps.append(step)
    if not steps:
        sec.file.problem(sec.key("step"), "a sequence needs at least one step")
    close_after = sec.get("close_after_days", int, 7)
    if close_after < 0:
        sec.file.problem(sec.key("close_after_days"), "must not be negative")
    sec.get("description", str, "")
    sec.finish()
    return Sequence(name, str(sec.file.path), tuple(steps), close_after)
