"""An example Archon plug-in: the ``shorten`` operator, the ``template`` backend kind and the
``contains`` scorer, each declared in pyproject.toml's entry points."""

__all__ = ["Shorten", "TemplateBackend", "TemplateSettings", "contains"]

from archon_example_plugin.contains import contains
from archon_example_plugin.shorten import Shorten
from archon_example_plugin.template import TemplateBackend, TemplateSettings
