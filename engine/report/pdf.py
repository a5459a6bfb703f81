"""Print the report's HTML to PDF with headless Chromium (no network, temporary profile).

Chromium is looked up as ``$REPORT_CHROMIUM``, then ``chromium``, ``chromium-browser``,
``google-chrome`` on ``PATH``. Where none is found, ``ChromiumNotFound`` says how to
install it; the HTML report works without it.

Chromium writes outside its profile too (crash-report settings under
``~/.config/chromium``, a dconf cache under ``~/.cache``, an NSS database under ``~/.pki``).
It runs with ``HOME``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``, ``XDG_DATA_HOME`` and
``--user-data-dir`` all inside one ``TemporaryDirectory`` that is removed afterwards, so
printing leaves nothing behind. ``TMPDIR`` is left alone: Chromium puts its singleton
socket there, and a socket path longer than 107 bytes (a deep temporary folder) makes it
abort; the files it makes there are its own and removed on exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.errors import EngineError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu, as root: apt-get update && apt-get install -y "
    "chromium) or set REPORT_CHROMIUM to a Chromium or Chrome executable; the HTML report "
    "works without it and prints to PDF from any browser"
)
TIMEOUT_S = 180
#: Environment variables pointed into the temporary folder (name -> sub-folder).
SCRATCH_ENV = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_DATA_HOME": "home/.local/share",
}


class ChromiumNotFound(EngineError):
    """No Chromium executable to print the PDF with."""


def find_chromium() -> str | None:
    """Return the path of a Chromium-family executable, or ``None``."""
    given = os.environ.get("REPORT_CHROMIUM")
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def scratch_environment(folder: Path) -> dict[str, str]:
    """Return a copy of ``os.environ`` whose ``SCRATCH_ENV`` variables point into ``folder``.

    The sub-folders are created; ``folder`` is the caller's temporary directory.
    """
    env = dict(os.environ)
    for name, sub in SCRATCH_ENV.items():
        path = folder / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    return env


def render_pdf(html: str, chromium: str | None = None) -> bytes:
    """Return ``html`` printed to PDF (A4, print CSS, no header or footer).

    Network access is disabled in the browser (every host name resolves to nothing);
    the report needs none. Chromium's home, configuration, cache, temporary files and
    profile live in a temporary folder removed afterwards (see the module docstring).
    Raises ``ChromiumNotFound`` or ``EngineError`` with one sentence.
    """
    executable = chromium or find_chromium()
    if executable is None:
        raise ChromiumNotFound(f"No Chromium was found to print the PDF: {INSTALL_HINT}.")
    with tempfile.TemporaryDirectory(prefix="report-pdf-") as folder:
        page, out = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        env = scratch_environment(Path(folder))
        command = [
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--disable-breakpad", "--disable-crash-reporter",
            f"--user-data-dir={Path(folder) / 'profile'}", "--no-pdf-header-footer",
            "--virtual-time-budget=15000", f"--print-to-pdf={out}", page.as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=TIMEOUT_S, check=False, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineError(
                f"Chromium did not finish printing the PDF within {TIMEOUT_S} s; download the "
                "HTML report and print it from a browser instead."
            ) from exc
        except OSError as exc:
            raise ChromiumNotFound(f"Chromium at {executable} could not start ({exc}): "
                                   f"{INSTALL_HINT}.") from exc  # fmt: skip
        if not out.is_file() or out.stat().st_size == 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise EngineError(
                f"Chromium exited with code {done.returncode} without writing the PDF "
                f"({' '.join(detail) or 'no message'}); download the HTML report instead."
            )
        return out.read_bytes()
