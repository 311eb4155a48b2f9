"""Keys, malformed and oversized requests, the in-flight limit, timeouts and failed runs: each answered
with its OpenAI-shaped 4xx (or the 502/504 that a failed or slow run deserves), never a crash."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import httpx
import openai
import pytest

from archon.exceptions import BackendAuthError, BackendUnavailable
from backends.doubles import FunctionBackend
from backends.presets import BackendSpec
from tests.serve.conftest import KEY, live, one_call, wait_for

QUESTION = {"model": "draft-fuse", "messages": [{"role": "user", "content": "What is 2+2?"}]}
AUTH = {"authorization": f"Bearer {KEY}"}


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and error["message"]
    return error


@pytest.fixture
def server(make_app):
    with live(make_app(api_keys=[KEY, "sk-second"], max_body_bytes=4096)) as srv:
        yield srv


def post(srv, body=None, *, headers=AUTH, content=None, path="/v1/chat/completions") -> httpx.Response:
    return httpx.post(srv.root + path, json=body if content is None else None, content=content, headers=headers, timeout=30)


def test_no_key_or_a_wrong_key_is_401_and_the_key_never_appears(server, caplog):
    caplog.set_level(logging.DEBUG)
    for headers in ({}, {"authorization": "Bearer sk-wrong-key"}, {"authorization": f"Basic {KEY}"},
                    {"authorization": "Bearer"}):
        r = post(server, QUESTION, headers=headers)
        err = assert_openai_error(r, 401, "invalid_api_key")
        assert err["type"] == "authentication_error" and r.headers["www-authenticate"] == "Bearer"
        assert "sk-wrong-key" not in r.text and KEY not in r.text
    assert httpx.get(server.url + "/models").status_code == 401
    assert httpx.get(server.url + "/models", headers={"authorization": "Bearer sk-second"}).status_code == 200
    assert post(server, QUESTION, headers={"authorization": "bearer sk-second"}).status_code == 200
    server_side = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("archon", "uvicorn", "fastapi")))
    assert KEY not in server_side and "sk-second" not in server_side and "sk-wrong-key" not in server_side
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="sk-nope").chat.completions.create(**QUESTION)


def test_malformed_json_and_wrong_types_are_400_naming_the_field(server):
    err = assert_openai_error(post(server, content=b'{"model": "x", "messages": [', headers={**AUTH, "content-type": "application/json"}),
                              400, "invalid_json")
    assert "not valid JSON" in err["message"]
    cases = [
        ({"messages": QUESTION["messages"]}, "model"),
        ({"model": "draft-fuse", "messages": []}, "messages"),
        ({"model": 3, "messages": QUESTION["messages"]}, "model"),
        ({**QUESTION, "stream": "yes"}, "stream"),
        ({**QUESTION, "n": 2}, "n"),
        ({"model": "draft-fuse", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "draft-fuse", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0].content[0].type"),
    ]
    for body, param in cases:
        err = assert_openai_error(post(server, body), 400, "invalid_request")
        assert err["param"] == param and err["type"] == "invalid_request_error", (body, err)
    assert "only text content" in err["message"]
    assert assert_openai_error(post(server, content=b"[1, 2]", headers={**AUTH, "content-type": "application/json"}),
                               400, "invalid_request")
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(base_url=server.url, api_key=KEY).chat.completions.create(model="draft-fuse", messages=[], n=1)


def test_bodies_that_are_not_json_text_are_400_naming_the_fix(server):
    lone_surrogate = b'{"model": "draft-fuse", "messages": [{"role": "user", "content": "half a pair: \\ud800"}]}'
    err = assert_openai_error(post(server, content=lone_surrogate, headers={**AUTH, "content-type": "application/json"}),
                              400, "invalid_request")
    assert err["param"] == "messages[0].content" and "not valid Unicode" in err["message"]
    not_utf8 = b'{"model": "draft-fuse", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    assert_openai_error(post(server, content=not_utf8, headers={**AUTH, "content-type": "application/json"}), 400, "invalid_json")
    as_form = post(server, content=json.dumps(QUESTION).encode(), headers={**AUTH, "content-type": "application/x-www-form-urlencoded"})
    assert "Content-Type: application/json" in assert_openai_error(as_form, 400, "invalid_request")["message"]


def test_unknown_openai_fields_are_accepted_and_ignored(server):
    body = {**QUESTION, "temperature": 1.3, "max_tokens": 7, "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_object"}, "seed": 1, "n": 1, "user": "u1", "future_field": [1, 2]}
    r = post(server, body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "The fused answer is 4."


def test_a_body_over_the_limit_is_413_whether_or_not_it_says_its_length(server):
    big = {**QUESTION, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_openai_error(post(server, big), 413, "request_too_large")

    def chunked():  # no Content-Length: the server counts as it reads
        yield b'{"model": "draft-fuse", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    r = httpx.post(server.root + "/v1/chat/completions", content=chunked(), headers={**AUTH, "content-type": "application/json"})
    assert_openai_error(r, 413, "request_too_large")
    assert post(server, QUESTION).status_code == 200  # the server is fine afterwards


def test_unknown_paths_and_methods_are_openai_shaped(server):
    assert_openai_error(httpx.get(server.root + "/v1/nothing", headers=AUTH), 404, "not_found")
    assert_openai_error(httpx.get(server.root + "/v1/chat/completions", headers=AUTH), 405, "method_not_allowed")


def test_beyond_the_in_flight_limit_requests_get_429_with_retry_after(make_app):
    release = threading.Event()

    async def slow(req, k):
        while not release.is_set():
            await asyncio.sleep(0.01)
        return "done"

    app = make_app([one_call()], backend=FunctionBackend(slow), max_in_flight=2)
    with live(app) as srv:
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(post(srv, {**QUESTION, "messages": [{"role": "user", "content": f"q{i}"}]})))
                   for i in range(2)]
        for t in threads:
            t.start()
        assert wait_for(lambda: httpx.get(srv.root + "/healthz").json()["in_flight"] == 2)
        r = post(srv, QUESTION)
        err = assert_openai_error(r, 429, "too_many_requests_in_flight")
        assert err["type"] == "rate_limit_error" and r.headers["retry-after"] == "1"
        # /v1/models and /healthz are not chat completions: still answered
        assert httpx.get(srv.url + "/models", headers=AUTH).status_code == 200
        release.set()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200, 200]
        assert post(srv, QUESTION).status_code == 200  # slots are given back


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_over_the_timeout_is_504(make_app, store, stream):
    app = make_app([one_call()], backend=FunctionBackend(lambda r, k: "late", delay=2.0), timeout_s=0.2)
    with live(app) as srv:
        r = post(srv, {**QUESTION, "stream": stream})
        err = assert_openai_error(r, 504, "timeout")
        assert "0.2 s" in err["message"]
    (run,) = store.runs()
    assert run["status"] == "error"


@pytest.mark.parametrize("stream", [False, True])
def test_a_backend_failure_after_retries_is_502_naming_node_and_backend(make_app, stream):
    def broken(req, k):
        raise BackendUnavailable("upstream is down")

    retry_fast = BackendSpec(max_retries=2, max_retry_wait=0.01)
    with live(make_app(backend=FunctionBackend(broken), settings=retry_fast)) as srv:
        err = assert_openai_error(post(srv, {**QUESTION, "stream": stream}), 502, "backend_error")
        assert "node 'draft'" in err["message"] and "backend 'fake'" in err["message"] and "upstream is down" in err["message"]
        assert "after 3 attempt(s)" in err["message"] and "(run " in err["message"]


def test_a_backend_refusing_the_servers_key_does_not_echo_the_upstream_message(make_app):
    def refused(req, k):
        raise BackendAuthError("Incorrect API key provided: sk-abc***xyz")

    with live(make_app(backend=FunctionBackend(refused))) as srv:
        err = assert_openai_error(post(srv, QUESTION), 502, "backend_auth_error")
        assert "sk-abc" not in err["message"] and "backend 'fake'" in err["message"]


def test_no_auth_serves_without_keys(make_app):
    with live(make_app(api_keys=None)) as srv:
        assert post(srv, QUESTION, headers={}).status_code == 200
    with pytest.raises(ValueError, match="pass None"):
        make_app(api_keys=[])


def test_the_openapi_schema_documents_the_endpoints_and_errors(server):
    schema = httpx.get(server.root + "/openapi.json").json()  # no key needed
    post_op = schema["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "404", "413", "429", "502", "504"} <= set(post_op["responses"])
    assert "text/event-stream" in post_op["responses"]["200"]["content"]
    assert json.dumps(schema).count("The served pipeline's name") == 1
