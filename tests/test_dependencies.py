"""OPS-04: dependency floors for the JOSE stack; known-bad libraries absent."""

from __future__ import annotations

import importlib.metadata
import importlib.resources

import pytest
from packaging.version import Version

FLOORS = {"joserfc": "1.6.8", "PyJWT": "2.13.0", "argon2-cffi": "23.1.0", "cryptography": "42.0"}


@pytest.mark.parametrize(("package", "floor"), sorted(FLOORS.items()))
def test_OPS_04_jose_and_crypto_libraries_are_at_safe_versions(package: str, floor: str) -> None:
    assert Version(importlib.metadata.version(package)) >= Version(floor)


@pytest.mark.parametrize("package", ["python-jose", "python-jwt", "jwcrypto"])
def test_OPS_04_libraries_with_open_advisories_are_not_installed(package: str) -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version(package)


def test_only_one_module_imports_the_jose_library() -> None:
    """docs/style.md rule 5: every decode goes through velvetrope.core.tokens.codec."""
    import velvetrope  # noqa: PLC0415

    root = importlib.resources.files(velvetrope)
    importers = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")  # type: ignore[attr-defined]
        if "import joserfc" in path.read_text()
        or "from joserfc" in path.read_text()
        or "import jwt" in path.read_text()
    )
    assert importers == ["core/tokens/codec.py"]
