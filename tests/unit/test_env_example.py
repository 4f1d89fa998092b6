"""env.example documents every setting, and only settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from parlour.common.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / "env.example"


def test_env_example_names_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^#?\s*PARLOUR_([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert documented == fields
