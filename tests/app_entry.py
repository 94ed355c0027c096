"""The app as AppTest runs it: streamlit_app.py, started from a folder without `pages/`.

AppTest looks for a `pages/` folder beside its script before every run and, finding one,
reruns the last page on its own, skipping the entry script and so the sidebar.
"""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"))
