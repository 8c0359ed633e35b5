"""sdk/js is ready to publish: package.json points at files that exist, the types declare every
function the snippet exports, the served copy is the same file, and it stays under 8 KB gzipped;
the snippet builds widget content with the DOM, never with HTML strings."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import personify

SDK = Path(__file__).resolve().parents[2] / "sdk" / "js"
SERVED = Path(personify.__file__).parent / "api" / "static" / "personify.js"
"""The copy in the package that /sdk/personify.js serves (personify.api.routers.web)."""


def test_package_json_names_existing_files() -> None:
    package = json.loads((SDK / "package.json").read_text(encoding="utf-8"))
    assert package["main"] == "personify.js" and package["types"] == "index.d.ts"
    for name in package["files"]:
        assert (SDK / name).is_file(), name
    assert package["license"] == "Apache-2.0"


def test_the_types_declare_every_exported_function() -> None:
    source = (SDK / "personify.js").read_text(encoding="utf-8")
    types = (SDK / "index.d.ts").read_text(encoding="utf-8")
    exported = set(re.findall(r"\bP\.(\w+) = ", source)) - {"consent"}  # an object, below
    assert {"init", "track", "identify", "recommend", "flush", "scan"} <= exported
    for name in exported:
        assert re.search(rf"\n\s+{name}\(", types), f"index.d.ts lacks {name}()"
    assert re.search(r"\n\s+consent: \{", types)
    for name in ("grant", "deny", "withdraw", "status"):
        assert re.search(rf"\n\s+{name}\(", types), name


def test_served_copy_is_the_source_and_small() -> None:
    source = (SDK / "personify.js").read_text(encoding="utf-8")
    assert SERVED.read_text(encoding="utf-8") == source, "run `make sdk`"
    assert len(gzip.compress(source.encode(), 9)) < 8 * 1024


def test_no_html_is_parsed_from_data() -> None:
    source = (SDK / "personify.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in source, sink
