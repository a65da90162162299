"""The scripts and styles the website and slides serve themselves (no CDN, no internet).

They come from npm, pinned in site/package-lock.json, and are installed once into
site/node_modules with ``npm ci``. ``copy_tree`` copies only what a page loads.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
NODE_MODULES = SITE / "node_modules"

# What each page needs, as paths inside site/node_modules.
MATHJAX3 = ["mathjax/es5"]  # the website: Sphinx loads mathjax/tex-chtml.js
REVEAL = [  # only the "white" theme: most others import fonts from Google
    "reveal.js/dist/reveal.css",
    "reveal.js/dist/reveal.js",
    "reveal.js/dist/theme/white.css",
    "reveal.js/dist/theme/fonts",
    "reveal.js/plugin/notes",
]
MATHJAX2 = [  # the slides: nbconvert's template calls MathJax 2's API (MathJax.Hub)
    "mathjax2/MathJax.js",
    "mathjax2/config",
    "mathjax2/extensions",
    "mathjax2/jax/input/TeX",
    "mathjax2/jax/output/CommonHTML",
    "mathjax2/jax/element",
    "mathjax2/localization/en",
    "mathjax2/fonts/HTML-CSS/TeX/woff",
]
SCRIPTS = ["requirejs/require.js", "jquery/dist/jquery.min.js"]


def install() -> None:
    """Install the pinned packages into site/node_modules (once; needs npm)."""
    stamp = NODE_MODULES / ".package-lock.json"
    lock = SITE / "package-lock.json"
    if stamp.is_file() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        raise SystemExit(
            "The website and slides serve MathJax and reveal.js themselves, which npm installs "
            "once into site/node_modules. Install Node.js and npm (Debian: apt-get install npm)."
        )
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(SITE)], check=True)


def copy_tree(parts: list[str], destination: Path, strip: str) -> None:
    """Copy each ``part`` of node_modules into ``destination``, minus its leading ``strip``."""
    for part in parts:
        source = NODE_MODULES / part
        target = destination / Path(part).relative_to(strip)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
