"""The escalation ladder's shell: what the pipeline needs of it, and its holds.

Owns: gathering a target's ladder input for ``core.decide`` (its facts, its steps with
their verdicts, the fix rates), and the holds the ladder's last rung starts: the alert's
step (``act.verify``) and the pause that keeps healthd's hands off the target
(``act.control``), both ended when the target recovers by itself or when a person resumes
it (``healthd resume``; the ladder then starts again at rung 1).
Must never: choose a rung (``core.ladder`` via ``core.escalate``) or act on the engine.
"""

from __future__ import annotations

from typing import Any

from healthd.act.control import Control
from healthd.act.verify import Verifier
from healthd.core import escalate, ladder
from healthd.core.model import ContainerState, Decision, Failure
from healthd.core.outcomeconfig import LadderSettings
from healthd.core.topology import Topology
from healthd.core.verdict import Kind


class Escalation:
    """Main loop only."""

    def __init__(self, settings: LadderSettings, verifier: Verifier, control: Control) -> None:
        self.settings, self.verifier, self.control = settings, verifier, control

    def context(self, c: ContainerState, failure: Failure,
                topology: Topology | None) -> dict[str, Any]:
        """The ``decide.Context`` fields of the ladder for ``c``'s ``failure``: none when
        ladders are off or ``failure`` has none (the table decides alone, as before)."""
        if not self.settings.enabled or self.settings.ladder_for(failure) is None:
            return {}
        if c.name in self.verifier.held and not self.control.held_by_ladder(c.name):
            # Its pause is gone while the hold stands: a person resumed it. The ladder
            # starts again, and what it tried before stays in the history.
            self.verifier.release(c.name, Kind.SUPERSEDED, "resumed by a person")
        # A recurrence seen just now is a verdict before the next rung is chosen.
        self.verifier.settle(c.id)
        return {"ladder_target": escalate.target_of(c, topology),
                "steps": tuple(self.verifier.steps(c.name, failure)),
                "tallies": self.verifier.tallies(self.settings)}

    def decided(self, d: Decision, topology: Topology | None) -> None:
        """``d`` was handled: a rung sent to the engine is watched for from now on (until
        its window opens), the ladder's alert to people holds its target."""
        if d.rung and d.acts:
            self.verifier.acting[d.target_name] = d.at
        if not escalate.is_hold(d) or d.suppressed_by is not None:
            return
        service = topology.service_of(d.target_id) if topology is not None else None
        self.verifier.hold(d, service)
        chain = d.notes[-1] if d.notes else "its rungs did not hold"
        self.control.hold(d.target_name, f"held for people ({ladder.HOLD_NAME}): {chain}")

    def recovered(self, c: ContainerState) -> None:
        """``c`` shows no problem now: a hold on it ends, and its ladder with it."""
        if c.name in self.verifier.held:
            self.verifier.release(c.name, Kind.FIXED, "recovered by itself while held")
            self.control.unhold(c.name, "it recovered by itself")
