"""The UI's own symbols are Material icons, which Streamlit ships, never emoji, which need an emoji font."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMOJI = re.compile("[\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]")


def test_the_pages_draw_no_emoji():
    pages = [ROOT / "streamlit_app.py", ROOT / "sidebar.py", *sorted((ROOT / "pages").glob("*.py"))]
    found = {path.name: EMOJI.findall(path.read_text()) for path in pages}
    assert {name: symbols for name, symbols in found.items() if symbols} == {}
