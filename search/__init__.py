"""Pipeline search (``archon search``): search spaces, Optuna studies, leaderboards."""

from search.space import SearchSpace, load_space, space_json_schema
from search.study import SearchResult, run_search

__all__ = ["SearchResult", "SearchSpace", "load_space", "run_search", "space_json_schema"]
