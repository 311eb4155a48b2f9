"""Pipeline search (``archon search``): search spaces, objectives and Optuna studies.

Filled in by the search issue; the package exists now so the layout of DESIGN.md holds.
"""

__all__: list[str] = []
