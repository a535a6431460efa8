"""A chart as one zip file: every chart file and the manifest, under a folder
named after the visit (what ``telemed chart export --format zip`` writes and
what staff download)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from telemed.chart.layout import MANIFEST, chart_files


def write_zip(where: Path, out: IO[bytes]) -> None:
    """Write the chart folder ``where`` as a zip to ``out`` (a file or any writable binary stream)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in [*chart_files(where), MANIFEST]:
            if (where / name).is_file():
                z.write(where / name, f"{where.name}/{name}")
