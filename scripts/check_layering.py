#!/usr/bin/env python3
"""Checks every project #include against scripts/layering.txt.

Prints each include that crosses into a folder its file's folder may not
depend on, as `file:line: #include "...": FOLDER may not include from TARGET`,
and exits 1 if there is any. Usage: scripts/check_layering.py [ROOT]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
table = {}
for raw in (root / "scripts" / "layering.txt").read_text().splitlines():
    line = raw.split("#", 1)[0].strip()
    if not line:
        continue
    folder, _, allowed = line.partition(":")
    table[folder.strip()] = set(allowed.split())

def folder_of(path: str):
    """The longest folder of the table that contains `path`, else None."""
    best = None
    for f in table:
        if (path == f or path.startswith(f + "/")) and (best is None or len(f) > len(best)):
            best = f
    return best

include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
bad = 0
for folder in table:
    for src in sorted((root / folder).rglob("*")):
        if src.suffix not in (".h", ".cpp", ".in") or not src.is_file():
            continue
        rel = src.relative_to(root).as_posix()
        if folder_of(rel) != folder:
            continue  # a subfolder with its own line
        for n, text in enumerate(src.read_text(errors="replace").splitlines(), 1):
            m = include.match(text)
            if not m:
                continue
            target = folder_of(m.group(1))
            if target is None:
                top = m.group(1).split("/", 1)[0]
                if (root / top).is_dir() and "/" in m.group(1):
                    target = top  # a project folder without a line: never allowed
                else:
                    continue  # a header beside the file or outside the project
            if target != folder and target not in table[folder]:
                print(f"{rel}:{n}: {text.strip()}: {folder} may not include from {target}")
                bad += 1
if bad:
    print(f"layering: {bad} forbidden include(s); the allowed table is scripts/layering.txt")
    sys.exit(1)
print(f"layering: every include of {len(table)} folders follows scripts/layering.txt")
