"""Everything one benchmark run measured, as one value (what the report and the goals read)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .accuracy import TargetAccuracy
from .overhead import OverheadResult
from .peers import PeerSet


@dataclass
class BenchResult:
    preset: str
    overhead: Optional[OverheadResult]
    accuracy: List[TargetAccuracy]
    peers: PeerSet = field(default_factory=PeerSet)
    machine: Dict[str, str] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)  # part -> wall seconds ("total" too)

    def target(self, key: str) -> Optional[TargetAccuracy]:
        return next((a for a in self.accuracy if a.target.key == key), None)
