"""``archon serve``: pipelines as an OpenAI-compatible service (FastAPI, run by uvicorn).

    from archon.serve import create_app
    app = create_app({"my-pipeline": spec}, Runtime(spec.backends), api_keys=["sk-..."])

Modules: ``app`` (the routes), ``protocol`` (the OpenAI wire format), ``streaming`` (server-sent
events), ``guard`` (keys, body and in-flight limits), ``errors`` (OpenAI-shaped errors),
``settings`` (the command's settings and the uvicorn server).
"""

from archon.exceptions import MissingDependency

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependency("archon serve", "serve") from exc

from archon.serve.app import create_app
from archon.serve.settings import ServeSettings, app_from_env, build_app, serve

__all__ = ["ServeSettings", "app_from_env", "build_app", "create_app", "serve"]
