"""A small OpenAI-compatible chat-completions server, scripted, for recording LLM cassettes.

No LLM endpoint is reachable where this project is built and tested, so the cassettes of
`test_extraction_llm.py` are recorded against this server. It answers
`POST /v1/chat/completions` in the format OpenAI documents for the Chat Completions API
(https://platform.openai.com/docs/api-reference/chat/object): `id`, `object`
("chat.completion"), `created`, `model`, `choices[{index, message{role, content,
tool_calls[{id, type "function", function{name, arguments}}]}, finish_reason}]`, `usage`;
errors as `{"error": {message, type, param, code}}`.

The request's `model` picks a script:

- `good` (and any name not below): a call to the output tool the request offers
  (pydantic-ai's `final_result`) with valid `{"fields": [...]}` arguments;
- `malformed-then-good`: first a tool call whose arguments break the schema (a confidence
  of "high", a field name with a space); once the conversation carries pydantic-ai's retry
  (a `tool` message answering that call), the good answer;
- `slow`: the good answer after `--slow-seconds` (default 30 s, longer than any client
  timeout; a shutdown cuts the wait short);
- `error500`: HTTP 500 with an OpenAI-style error body.

The script is decided from the request alone (no state kept between requests), so any
number of tests can share one server. Every request must carry an `Authorization` header
(401 otherwise, as OpenAI answers): its value is not checked, but a cassette recorded here
would hold it if the tests did not filter it out.

Run it: `python tests/extraction/fake_openai.py [--port 18999]` serves until interrupted;
`python tests/extraction/fake_openai.py [--port N] -- CMD ...` serves while CMD runs, with
`CCV_FAKE_LLM_BASE_URL` set for CMD (and `CCV_LLM_BASE_URL`, `CCV_LLM_API_KEY`,
`CCV_LLM_MODEL` pointed at this server unless CMD's environment already names an
endpoint), then stops and exits with CMD's status: this is what `make cassettes` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_PORT = 18999
DEFAULT_SLOW_SECONDS = 30.0
FAKE_API_KEY = "fake-key-not-secret"

GOOD_FIELDS: list[dict[str, Any]] = [
    {
        "field_name": "email",
        "confidence": 0.95,
        "reason": "'send the confirmation to the customer's email'",
        "required_level": "hard",
    },
    {
        "field_name": "order_number",
        "confidence": 0.9,
        "reason": "'look up the order by its number'",
        "required_level": "hard",
        "step_id": "lookup",
    },
    {
        "field_name": "preferred_delivery_date",
        "confidence": 0.6,
        "reason": "'offer a new delivery date if the customer wants one'",
        "required_level": "soft",
        "fallback_action": "skip",
        "value_type": "date",
        "display_name": "Preferred delivery date",
    },
    {
        "field_name": "proof_of_address",
        "confidence": 0.85,
        "reason": "'for refunds above 500 EUR we need proof of address'",
        "required_level": "hard",
        "when_condition": "refund_amount > 500",
        "needs_review": True,
        "value_type": "string",
        "display_name": "Proof of address",
    },
    {
        "field_name": "date_of_birth",
        "confidence": 0.9,
        "reason": "'the customer must be over 18'",
        "required_level": "hard",
        "constraints": {"min_age": 18},
        "value_type": "date",
        "display_name": "Date of birth",
    },
]
"""The good answer: a defined field, a defined field for one step, an optional field no
definition covers (below the 0.8 review threshold, so it needs a human review), a document
needed only for large refunds (a condition over a context value: always reviewed), and an
age limit as a bound on a new date-of-birth definition."""

MALFORMED_FIELDS: list[dict[str, Any]] = [
    {"field_name": "email", "confidence": "high", "reason": "needs a confirmation address"},
    {"field_name": "Order Number", "confidence": 0.9},
    {"field_name": "proof_of_address", "confidence": 0.8, "when_condition": "refund > 500 EUR"},
    {"field_name": "date_of_birth", "confidence": 0.9, "constraints": {"min_age": "adult"}},
]
"""Arguments that fail the `Proposals` schema: a non-numeric confidence, a field name that
is not snake_case, a condition outside the condition language and a bound that is not a
number."""


def completion(model: str, message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    """A chat.completion object with one choice, as OpenAI documents it."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake_openai",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 80, "total_tokens": 380},
    }


def answer(request: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Answer with `{"fields": ...}`: a call to the request's output tool, else as content."""
    model = str(request.get("model", "good"))
    arguments = json.dumps({"fields": fields})
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]
    if not tools:
        content: dict[str, Any] = {"role": "assistant", "content": arguments, "refusal": None}
        return completion(model, content, "stop")
    names = [t["function"]["name"] for t in tools]
    name = "final_result" if "final_result" in names else names[0]
    call = {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [call],
    }
    return completion(model, message, "tool_calls")


def error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    """An error body in OpenAI's format."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def is_retry(request: dict[str, Any]) -> bool:
    """Whether the conversation already answers a tool call (pydantic-ai's retry prompt)."""
    return any(m.get("role") == "tool" for m in request.get("messages") or [])


class FakeOpenAIServer(ThreadingHTTPServer):
    """The HTTP server; `stopping` wakes slow answers up when it shuts down."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], slow_seconds: float) -> None:
        super().__init__(address, Handler)
        self.slow_seconds = slow_seconds
        self.stopping = threading.Event()
        self.requests_seen = 0

    @property
    def base_url(self) -> str:
        """The URL an OpenAI client takes as `base_url`."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"


class Handler(BaseHTTPRequestHandler):
    """One request: check it, pick the script from the model name, answer."""

    server: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms on Linux), a delay of the fake server's own.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test run should not print a line per request."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        """`GET /v1/models` lists the scripts, like OpenAI's model list; nothing else."""
        if self.path.rstrip("/") != "/v1/models":
            self._send(404, error(f"Unknown path {self.path}", "invalid_request_error", None))
            return
        names = ["good", "malformed-then-good", "slow", "error500"]
        models = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
        self._send(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        """`POST /v1/chat/completions`."""
        self.server.requests_seen += 1
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, error(f"Unknown path {self.path}", "invalid_request_error", None))
            return
        if not self.headers.get("Authorization"):
            message = "You didn't provide an API key in an Authorization header."
            self._send(401, error(message, "invalid_request_error", "invalid_api_key"))
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self._send(400, error("The body is not valid JSON.", "invalid_request_error", None))
            return
        if request.get("stream"):
            message = "This fake server does not stream."
            self._send(400, error(message, "invalid_request_error", None))
            return
        model = str(request.get("model", "good"))
        if model == "error500":
            message = "The server had an error while processing your request. Sorry about that!"
            self._send(500, error(message, "server_error", None))
        elif model == "malformed-then-good" and not is_retry(request):
            self._send(200, answer(request, MALFORMED_FIELDS))
        elif model == "slow":
            if self.server.stopping.wait(self.server.slow_seconds):
                return
            self._send(200, answer(request, GOOD_FIELDS))
        else:
            self._send(200, answer(request, GOOD_FIELDS))


@contextlib.contextmanager
def running(server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """Serve in a background thread until the block ends, then stop and close."""
    thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(
    host: str = "127.0.0.1", port: int = 0, slow_seconds: float = DEFAULT_SLOW_SECONDS
) -> contextlib.AbstractContextManager[FakeOpenAIServer]:
    """The server running in a background thread (port 0: any free port), stopped on exit."""
    return running(FakeOpenAIServer((host, port), slow_seconds))


def child_environment(base_url: str) -> dict[str, str]:
    """The command's environment: the fake server's URL, and the LLM settings pointed at
    it unless an endpoint is already configured."""
    env = dict(os.environ, CCV_FAKE_LLM_BASE_URL=base_url)
    if not env.get("CCV_LLM_BASE_URL"):
        env["CCV_LLM_BASE_URL"] = base_url
        env["CCV_LLM_API_KEY"] = FAKE_API_KEY
        env["CCV_LLM_MODEL"] = "good"
    return env


def bind(host: str, port: int | None, slow_seconds: float) -> FakeOpenAIServer:
    """The server on `port` (0: any free port); unset: FAKE_LLM_PORT, else the default port,
    else any free port when that one is taken (recorded URLs then differ, nothing else)."""
    if port is not None:
        return FakeOpenAIServer((host, port), slow_seconds)
    configured = os.environ.get("FAKE_LLM_PORT")
    if configured:
        return FakeOpenAIServer((host, int(configured)), slow_seconds)
    try:
        return FakeOpenAIServer((host, DEFAULT_PORT), slow_seconds)
    except OSError:
        return FakeOpenAIServer((host, 0), slow_seconds)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted, or while a command runs."""
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="0: any free port")
    parser.add_argument("--slow-seconds", type=float, default=DEFAULT_SLOW_SECONDS)
    options = parser.parse_args(args)
    with running(bind(options.host, options.port, options.slow_seconds)) as server:
        print(f"fake OpenAI server on {server.base_url}", file=sys.stderr, flush=True)
        if command:
            return subprocess.call(command, env=child_environment(server.base_url))
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
