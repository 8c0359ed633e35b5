"""Chart descriptions the templates draw with uPlot and list as a table under each chart.

A chart is data, not markup: the page embeds it as JSON in a ``data-chart`` attribute (no inline
script, so the content security policy can forbid them) and ``dashboard.js`` draws it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Series:
    name: str
    values: list[float | None]
    percent: bool = False


@dataclass
class Chart:
    """``x`` is UNIX seconds when ``time_axis``, else category labels in ``labels``."""

    chart_id: str
    title: str
    labels: list[str]
    series: list[Series] = field(default_factory=list)
    kind: Literal["line", "bars"] = "line"
    x: list[float] = field(default_factory=list)
    time_axis: bool = False

    def payload(self) -> str:
        """The JSON ``dashboard.js`` reads."""
        def clean(v: float | None) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return json.dumps(
            {
                "id": self.chart_id,
                "kind": self.kind,
                "time": self.time_axis,
                "x": self.x if self.time_axis else list(range(len(self.labels))),
                "labels": self.labels,
                "series": [
                    {"name": s.name, "values": [clean(v) for v in s.values], "percent": s.percent}
                    for s in self.series
                ],
            },
            separators=(",", ":"),
        )

    @property
    def empty(self) -> bool:
        return not self.labels or all(
            all(v is None or v == 0 for v in s.values) for s in self.series
        )
