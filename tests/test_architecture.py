"""Dependencies point one way: chatcore never imports streamlit."""

import subprocess
import sys
from pathlib import Path

CHATCORE = Path(__file__).resolve().parents[1] / "chatcore"


def test_chatcore_never_imports_streamlit():
    modules = sorted(f"chatcore.{path.stem}" for path in CHATCORE.glob("*.py") if path.stem != "__init__")
    code = f"import sys; import {', '.join(modules)}; print('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=CHATCORE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert len(modules) >= 6
