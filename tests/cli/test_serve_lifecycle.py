"""`ccv serve` stops cleanly and starts again after anything: SIGTERM, SIGINT, a kill, a
taken port. Each test checks the process table for servers left on its data dir."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from serve_support import (
    CCV,
    KEY,
    Served,
    clean_env,
    describe,
    free_port,
    kill_leftovers,
    leftovers,
    own_data_dir,
    wait_no_leftovers,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir of the test's own; whatever runs on it is killed at the end."""
    with own_data_dir() as path:
        yield path


@pytest.fixture
def serve(data_dir: Path) -> Iterator[list[Served]]:
    """Started `ccv serve` processes, torn down whatever the test did."""
    started: list[Served] = []
    yield started
    for served in started:
        served.kill_everything()


def _start(started: list[Served], data_dir: Path, *args: str) -> Served:
    served = Served(data_dir, free_port(), *args)
    started.append(served)
    served.wait_ready()
    return served


def _python_children(served: Served) -> list[psutil.Process]:
    """Its Python descendants: the uvicorn workers and multiprocessing's resource tracker."""
    return [p for p in served.tree()[1:] if "multiprocessing" in " ".join(p.cmdline())]


def _workers(served: Served) -> list[psutil.Process]:
    """The uvicorn worker processes of a --workers run."""
    return [p for p in _python_children(served) if "spawn_main" in " ".join(p.cmdline())]


def _postmasters(data_dir: Path) -> list[psutil.Process]:
    pgdata = str((data_dir / "postgres").resolve())
    return [p for p in leftovers(data_dir) if pgdata in (p.info["cmdline"] or [])]


def _valkeys(data_dir: Path) -> list[psutil.Process]:
    return [p for p in leftovers(data_dir) if p.info["name"] == "valkey-server"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_answers_the_request_in_hand_then_stops_the_embedded_servers(
    data_dir: Path, serve: list[Served], sig: signal.Signals
) -> None:
    served = _start(serve, data_dir)
    key = KEY.search(served.output())
    assert key, served.output()
    assert _postmasters(data_dir) and _valkeys(data_dir), "the embedded servers run"
    body = json.dumps({"value": "ada@example.com", "source": "user_provided"}).encode()
    head = (
        "PUT /v1/profiles/c1/fields/email HTTP/1.1\r\nHost: vault\r\n"
        f"Authorization: Bearer {key.group(1)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as client:
        client.sendall(head + body[:10])  # in hand: the app waits for the rest of the body
        time.sleep(0.5)
        served.proc.send_signal(sig)
        time.sleep(1)
        assert served.proc.poll() is None, "a request in hand holds the stop"
        client.sendall(body[10:])
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert served.proc.wait(timeout=60) == 0, served.output()
    assert not (left := wait_no_leftovers(data_dir)), describe(left)
    assert "Application shutdown complete" in served.output(), "uvicorn stopped gracefully"


def test_sigterm_with_workers_stops_every_worker_and_the_embedded_servers(
    data_dir: Path, serve: list[Served]
) -> None:
    served = _start(serve, data_dir, "--workers", "2")
    assert len(_workers(served)) == 2, describe(served.tree())
    children = _python_children(served)

    assert served.send(signal.SIGTERM) == 0, served.output()

    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, describe(alive)
    assert not (left := wait_no_leftovers(data_dir)), describe(left)


def test_workers_stop_when_their_parent_is_killed(data_dir: Path, serve: list[Served]) -> None:
    served = _start(serve, data_dir, "--workers", "2")
    assert len(_workers(served)) == 2, describe(served.tree())
    children = _python_children(served)

    served.proc.kill()
    served.proc.wait(timeout=10)

    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"workers outlived their parent: {describe(alive)}"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.base}/healthz", timeout=2)


def test_after_a_crash_the_next_start_recovers_the_data_dir_and_runs_one_of_each_server(
    data_dir: Path, serve: list[Served]
) -> None:
    first = _start(serve, data_dir)
    key = KEY.search(first.output())
    assert key, first.output()
    auth = {"Authorization": f"Bearer {key.group(1)}"}
    put = httpx.put(
        f"{first.base}/v1/profiles/c1/fields/email",
        json={"value": "ada@example.com", "source": "user_provided"},
        headers=auth,
    )
    assert put.status_code == 201, put.text

    first.proc.kill()
    first.proc.wait(timeout=10)
    assert _postmasters(data_dir) and _valkeys(data_dir), "a kill leaves its servers running"

    again = _start(serve, data_dir)
    assert len(_postmasters(data_dir)) == 1, describe(_postmasters(data_dir))
    assert len(_valkeys(data_dir)) == 1, describe(_valkeys(data_dir))
    got = httpx.get(f"{again.base}/v1/profiles/c1", headers=auth)
    assert got.json()["fields"]["email"]["value"] == "ada@example.com"

    assert again.send(signal.SIGTERM) == 0, again.output()
    assert not (left := wait_no_leftovers(data_dir)), describe(left)


def test_a_lock_file_naming_a_recycled_pid_does_not_stop_the_next_start(
    data_dir: Path, serve: list[Served]
) -> None:
    first = _start(serve, data_dir)
    first.proc.kill()
    first.proc.wait(timeout=10)
    for postmaster in _postmasters(data_dir):
        postmaster.kill()  # as after a reboot: nothing of the old run is left...
    kill_leftovers(data_dir)
    # ...but its postmaster.pid, naming a pid that a live, unrelated process now has.
    stranger = subprocess.Popen(["sleep", "120"])
    try:
        lock = data_dir / "postgres" / "postmaster.pid"
        lines = lock.read_text().splitlines()
        lock.write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")

        again = _start(serve, data_dir)

        assert len(_postmasters(data_dir)) == 1
        assert again.send(signal.SIGTERM) == 0, again.output()
        assert not (left := wait_no_leftovers(data_dir)), describe(left)
        assert stranger.poll() is None, "the process with the recycled pid is left alone"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_taken_port_fails_at_once_with_one_line_and_starts_nothing(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CCV, "serve", "--port", str(port)],
            env=clean_env(CCV_DATA_DIR=str(data_dir)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "API key" not in result.stdout + result.stderr
    assert not data_dir.exists(), "no server was started, no tenant created"
    assert not leftovers(data_dir)


def test_a_stop_during_start_up_leaves_nothing_running(data_dir: Path, serve: list[Served]) -> None:
    served = Served(data_dir, free_port())
    serve.append(served)
    deadline = time.monotonic() + 60
    while not _postmasters(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)  # PostgreSQL is up: migrations and the rest are still to come

    assert served.send(signal.SIGTERM) == 0, served.output()

    assert not (left := wait_no_leftovers(data_dir)), describe(left)


def test_a_worker_on_the_same_data_dir_shares_its_servers_and_leaves_them_running(
    data_dir: Path, serve: list[Served]
) -> None:
    served = _start(serve, data_dir)
    log = data_dir.parent / "worker.log"
    with log.open("w") as handle:
        worker = subprocess.Popen(
            [CCV, "worker"],
            env=clean_env(CCV_DATA_DIR=str(data_dir), CCV_LOG_FORMAT="json"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker started" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert len(_postmasters(data_dir)) == 1
        assert len(_valkeys(data_dir)) == 1, "the worker joined the running Valkey"

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert httpx.get(f"{served.base}/readyz").json()["checks"]["cache"] == "ok"
    assert len(_postmasters(data_dir)) == 1 and len(_valkeys(data_dir)) == 1
    assert served.send(signal.SIGTERM) == 0, served.output()
    assert not (left := wait_no_leftovers(data_dir)), describe(left)
