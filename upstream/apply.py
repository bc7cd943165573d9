"""Apply ``upstream/`` (FAERec as a RecBole pull request) to a RecBole source tree.

    python upstream/apply.py RECBOLE_SRC

``RECBOLE_SRC`` is a RecBole checkout (``recbole/``, ``tests/``, ``docs/``) or a folder holding a
copy of an installed ``recbole`` package. The command copies the model file, its yaml and its docs
page, imports the model in ``recbole/model/sequential_recommender/__init__.py``, adds the
``test_faerec`` entry to ``TestSequentialRecommender`` in ``tests/model/test_model_auto.py`` (when
the tree has that file) and lists the page in the docs' model index (when the tree has it). It is
idempotent. A tree that is not a git repository gets one first, with the untouched tree as its
first commit, so that the printed ``git diff --stat`` shows exactly what the pull request adds.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COPIED = (
    "recbole/model/sequential_recommender/faerec.py",
    "recbole/properties/model/FAERec.yaml",
    "docs/source/user_guide/model/sequential/faerec.rst",
)
MODELS_INIT = "recbole/model/sequential_recommender/__init__.py"
IMPORT_LINE = "from recbole.model.sequential_recommender.faerec import FAERec\n"
TEST_FILE = "tests/model/test_model_auto.py"
TEST_ENTRY = HERE / "tests/model/test_model_auto.py.faerec"
TEST_CLASS = "class TestSequentialRecommender("
DOCS_INDEX = "docs/source/user_guide/model_intro.rst"
DOCS_ENTRY = "model/sequential/faerec"
GIT_IDENTITY = ("-c", "user.name=recbole-faerec", "-c", "user.email=recbole-faerec@localhost")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=root, capture_output=True, text=True, check=True
    )
    return done.stdout


def _ensure_repository(root: Path) -> None:
    if (root / ".git").exists():
        return
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "RecBole before FAERec")


def _add_import(root: Path) -> None:
    path = root / MODELS_INIT
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if IMPORT_LINE in lines:
        return
    later = [i for i, line in enumerate(lines) if line.startswith("from ") and line > IMPORT_LINE]
    lines.insert(later[0] if later else len(lines), IMPORT_LINE)
    path.write_text("".join(lines), encoding="utf-8")


def _add_test_entry(root: Path) -> bool:
    path = root / TEST_FILE
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if "def test_faerec(" in text:
        return True
    start = text.find(TEST_CLASS)
    if start < 0:
        raise ValueError(f"{path}: no {TEST_CLASS}...) to add the FAERec entry to")
    end = text.find("\nclass ", start + 1)
    end = len(text) if end < 0 else end + 1
    body = text[:end].rstrip("\n") + "\n\n" + TEST_ENTRY.read_text(encoding="utf-8")
    rest = text[end:]
    path.write_text(body + ("\n\n" + rest if rest else ""), encoding="utf-8")
    return True


def _add_docs_entry(root: Path) -> bool:
    path = root / DOCS_INDEX
    if not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if any(line.strip() == DOCS_ENTRY for line in lines):
        return True
    anchor = [i for i, line in enumerate(lines) if line.strip().startswith("model/sequential/")]
    if not anchor:
        return False
    indent = lines[anchor[-1]][: len(lines[anchor[-1]]) - len(lines[anchor[-1]].lstrip())]
    lines.insert(anchor[-1] + 1, f"{indent}{DOCS_ENTRY}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return True


def apply(root: str | Path) -> str:
    """Apply the pull request to the tree at ``root``; return its ``git diff --stat``."""
    root = Path(root).resolve()
    if not (root / MODELS_INIT).is_file():
        raise FileNotFoundError(
            f"{root}: no {MODELS_INIT}; fix: give the folder that holds RecBole's `recbole/` "
            "package (a RecBole checkout, or a copy of the installed package's parent folder)."
        )
    _ensure_repository(root)
    for name in COPIED:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / name, target)
    _add_import(root)
    tested = _add_test_entry(root)
    documented = _add_docs_entry(root)
    _git(root, "add", "-A")
    notes = []
    if not tested:
        notes.append(f"no {TEST_FILE} in this tree: the test_faerec entry was not added")
    if not documented:
        notes.append(f"no {DOCS_INDEX} in this tree: the docs page is not in the model index")
    return _git(root, "diff", "--cached", "--stat") + "".join(f"note: {n}\n" for n in notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recbole_src", help="RecBole source tree (or a copy of the package)")
    args = parser.parse_args(argv)
    try:
        print(apply(args.recbole_src), end="")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
