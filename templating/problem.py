"""The one error of templating: a template that cannot be saved or rendered."""

from __future__ import annotations


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; ``part`` and ``line`` say where."""

    def __init__(self, message: str, part: str | None = None, line: int | None = None):
        where = f" (line {line})" if line else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.part = part
        self.line = line

    def with_part(self) -> str:
        """The problem prefixed with the part it is in (``body: …``), for one-line reports."""
        return f"{self.part}: {self}" if self.part else str(self)
