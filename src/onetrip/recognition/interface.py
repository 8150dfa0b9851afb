"""What other capability domains may use of recognition (互认) — its named service interface.

analytics reads the decision log and the reason codes for its daily facts; nothing else of recognition is
imported by a sibling (pyproject.toml, contract "domains"). The models are for reading only.
"""

from __future__ import annotations

from onetrip.recognition.models import RecognitionDecision, RecognitionReason

__all__ = ["RecognitionDecision", "RecognitionReason"]
