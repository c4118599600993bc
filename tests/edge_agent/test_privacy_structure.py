"""No image leaves the box except through the privacy gate: checked on the source code itself.

The AST of every module under edge_agent/, common/ and cloud_hub/ is walked. Outside
edge_agent/privacy/ it is a violation to
- use an image/array encoder or writer: OpenCV ``imwrite*`` / ``imencode*`` / ``VideoWriter``,
  numpy ``save`` / ``savez*`` / ``savetxt`` / ``tofile`` / ``tobytes`` (raw pixels as bytes),
  PIL ``Image.save``, imageio / scikit-image ``imwrite`` / ``imsave`` / ``mimwrite`` /
  ``mimsave``, matplotlib ``imsave`` / ``savefig``, by attribute, by ``from ... import`` or by
  ``getattr(module, "name")``;
- import an image-writing library (PIL, imageio, matplotlib, skimage) at all;
- draw the heatmap image (``overlay_heatmap``, formerly ``render_heatmap_png``): only the gate
  draws it, over a background it made safe;
- construct a ``SafeImage`` or touch the gate's private token.
Inside edge_agent/privacy/ only the gate encodes (``imencode``) and only the explicit raw debug
dump writes frames (``imwrite``).

The checker is tested on planted violations, so a check that silently finds nothing fails.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("edge_agent", "common", "cloud_hub")
PRIVACY = "edge_agent/privacy/"

ENCODERS = frozenset(
    {
        # OpenCV
        "imwrite",
        "imwritemulti",
        "imwriteanimation",
        "imwriteWithMetadata",
        "imencode",
        "imencodemulti",
        "imencodeanimation",
        "imencodeWithMetadata",
        "VideoWriter",
        # numpy: arrays (frames) to files or raw bytes
        "save",  # also PIL Image.save
        "savez",
        "savez_compressed",
        "savetxt",
        "tofile",
        "tobytes",
        # imageio, scikit-image, matplotlib
        "imsave",
        "mimwrite",
        "mimsave",
        "savefig",
    }
)
GATE_ONLY = frozenset({"overlay_heatmap", "render_heatmap_png"})
IMAGE_LIBRARIES = frozenset({"PIL", "imageio", "matplotlib", "skimage"})
TOKEN = "_GATE_TOKEN"
# Inside the privacy package: which module may use which encoder.
PRIVACY_ALLOWED = {
    "edge_agent/privacy/gate.py": {"imencode", "tobytes", "overlay_heatmap", "SafeImage", TOKEN},
    "edge_agent/privacy/debug_dump.py": {"imwrite"},
}


@dataclass(frozen=True)
class Violation:
    """One forbidden use: file, line and what was used."""

    path: str
    line: int
    what: str


def _uses(tree: ast.AST) -> list[tuple[int, str, str]]:
    """Every (line, name, kind) in ``tree`` that the privacy rules care about."""
    found: list[tuple[int, str, str]] = []
    watched = ENCODERS | GATE_ONLY
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in watched | {TOKEN}:
            found.append((node.lineno, node.attr, "attribute"))
        elif isinstance(node, ast.Name) and node.id == TOKEN:
            found.append((node.lineno, TOKEN, "name"))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in IMAGE_LIBRARIES:
                found.append((node.lineno, module, "import"))
            for alias in node.names:
                if alias.name in watched | {TOKEN}:
                    found.append((node.lineno, alias.name, "import"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in IMAGE_LIBRARIES:
                    found.append((node.lineno, alias.name, "import"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "SafeImage":
                found.append((node.lineno, "SafeImage", "call"))
            if (
                name == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in watched | {TOKEN}
            ):
                found.append((node.lineno, str(node.args[1].value), "getattr"))
            if isinstance(func, ast.Name) and func.id in GATE_ONLY:
                found.append((node.lineno, func.id, "call"))
    return found


def find_violations(source: str, path: str) -> list[Violation]:
    """Forbidden image encoding / gate bypasses in one module's ``source``; ``path`` is its
    repo-relative path (it decides what the module is allowed)."""
    allowed = PRIVACY_ALLOWED.get(path, set())
    out = []
    for line, name, kind in _uses(ast.parse(source, filename=path)):
        if name in allowed:
            continue
        if path.startswith(PRIVACY) and name in GATE_ONLY | {"SafeImage"}:
            continue  # the gate's own package may draw heatmaps and pass SafeImage around
        out.append(Violation(path, line, f"{kind} {name}"))
    return sorted(set(out), key=lambda v: (v.path, v.line, v.what))


def scan(root: Path) -> list[Violation]:
    """Violations in every .py file of the scanned packages under ``root``."""
    out: list[Violation] = []
    for package in SCANNED:
        for file in sorted((root / package).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            out.extend(find_violations(file.read_text(), rel))
    return out


def test_no_code_outside_the_gate_encodes_or_writes_images() -> None:
    violations = scan(REPO)
    assert violations == [], "images must leave only through edge_agent.privacy:\n" + "\n".join(
        f"  {v.path}:{v.line}: {v.what}" for v in violations
    )


def test_the_scan_covers_the_pipeline_and_the_gate() -> None:
    scanned = {f.relative_to(REPO).as_posix() for p in SCANNED for f in (REPO / p).rglob("*.py")}
    # If these moved, the scan would be checking the wrong tree.
    for must in (
        "edge_agent/process.py",
        "edge_agent/analytics/heatmap.py",
        "edge_agent/privacy/gate.py",
        "common/telemetry.py",
    ):
        assert must in scanned
    # The gate really is where the encoding happens (allowed there, seen by the walker).
    gate = (REPO / "edge_agent/privacy/gate.py").read_text()
    assert {name for _, name, _ in _uses(ast.parse(gate))} >= {"imencode", "overlay_heatmap"}


def test_checker_catches_planted_violations_in_source() -> None:
    planted = {
        "import cv2\ncv2.imwrite('x.png', frame)\n": "attribute imwrite",
        "import cv2 as c\nok, buf = c.imencode('.jpg', frame)\n": "attribute imencode",
        "from cv2 import imwrite as w\nw('x.png', frame)\n": "import imwrite",
        "import numpy as np\nnp.save('f.npy', frame)\n": "attribute save",
        "payload = frame.tobytes()\n": "attribute tobytes",
        "from PIL import Image\nImage.fromarray(frame).save('x.jpg')\n": "import PIL",
        "import imageio.v3 as iio\niio.imwrite('x.png', frame)\n": "import imageio.v3",
        "import cv2\nf = getattr(cv2, 'imwrite')\n": "getattr imwrite",
        "from edge_agent.analytics import overlay_heatmap\n": "import overlay_heatmap",
        "import edge_agent.analytics as a\nimg = a.overlay_heatmap(c, bg)\n": (
            "attribute overlay_heatmap"
        ),
        "from edge_agent.privacy.gate import _GATE_TOKEN\n": "import _GATE_TOKEN",
        "from edge_agent.privacy import SafeImage\nSafeImage(data=b'', token=None)\n": (
            "call SafeImage"
        ),
        "import cv2\nw = cv2.VideoWriter('o.mp4', 0, 10, (640, 480))\n": "attribute VideoWriter",
    }
    for source, what in planted.items():
        found = find_violations(source, "edge_agent/analytics/planted.py")
        assert what in {v.what for v in found}, f"missed {what!r} in:\n{source}"
    # Importing SafeImage to accept it (as sinks do) is fine; so is plain file I/O.
    clean = (
        "from pathlib import Path\nfrom edge_agent.privacy import SafeImage\n"
        "def put(img: SafeImage, p: Path) -> None:\n    p.write_bytes(img.data)\n"
    )
    assert find_violations(clean, "edge_agent/outbox/images.py") == []
    # The gate's own encoder is allowed only in the gate's module.
    encode = "import cv2\nok, buf = cv2.imencode('.jpg', img)\n"
    assert find_violations(encode, "edge_agent/privacy/gate.py") == []
    assert find_violations(encode, "edge_agent/privacy/sinks.py") != []


def test_checker_catches_an_imwrite_planted_in_the_real_analytics(tmp_path: Path) -> None:
    for package in SCANNED:
        shutil.copytree(REPO / package, tmp_path / package)
    assert scan(tmp_path) == []
    heatmap = tmp_path / "edge_agent/analytics/heatmap.py"
    heatmap.write_text(
        heatmap.read_text() + "\n\ndef dump(frame):\n    cv2.imwrite('/tmp/f.png', frame)\n"
    )
    found = scan(tmp_path)
    assert [(v.path, v.what) for v in found] == [
        ("edge_agent/analytics/heatmap.py", "attribute imwrite")
    ]
