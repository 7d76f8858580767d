"""The package list for the root-is-the-package layout; everything else is declared in pyproject.toml.

Every folder with an ``__init__.py`` becomes ``rs_ltxv.<folder>`` automatically, so a new subpackage ships without
editing a list. setuptools' ``packages.find`` cannot add the ``rs_ltxv.`` prefix when the package is the project root,
which is why these few lines exist. The root's tool scripts (this file, ``install.py``) are left out of the package.
"""

from __future__ import annotations

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# Folders that are never part of the installed package (they have no __init__.py today; listed so adding one is safe).
NOT_PACKAGED = ["tests", "benchmarks", "scripts", "example_workflows", "build", "dist", "venv"]
# Root .py files that are tools for the repository, not modules of rs_ltxv.
ROOT_SCRIPTS = {"setup", "install"}


def package_list() -> list[str]:
    """``rs_ltxv`` and ``rs_ltxv.<dotted path>`` for every package folder under the root."""
    exclude = [p for name in NOT_PACKAGED for p in (name, f"{name}.*")]
    return ["rs_ltxv", *(f"rs_ltxv.{p}" for p in find_packages(".", exclude=exclude))]


class BuildPy(build_py):
    """build_py that leaves ``setup.py`` / ``install.py`` out of the ``rs_ltxv`` package."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (m[0] == "rs_ltxv" and m[1] in ROOT_SCRIPTS)]


setup(packages=package_list(), cmdclass={"build_py": BuildPy})
