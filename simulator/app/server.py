"""``tumorsim explore``: serve the explorer with a Bokeh server on 127.0.0.1 only.

Bokeh ships its JavaScript with the Python package, so the page needs no network beyond
the local server. Each browser tab is its own session (its own runs).
"""
from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

from simulator.schema import ScenarioError

#: Default port (Bokeh's own default; ``--port 0`` picks any free port).
DEFAULT_PORT = 5006
ADDRESS = "127.0.0.1"
EXTRA = "explore"
MISSING_EXTRA = (f"tumorsim explore needs the '{EXTRA}' extra (Bokeh): "
                 f"pip install 'tumorsim[{EXTRA}]'")


def check_extra():
    """One clear line when Bokeh is missing (raised before anything starts)."""
    if importlib.util.find_spec("bokeh") is None:
        raise ScenarioError(MISSING_EXTRA)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


def make_server(port: int = DEFAULT_PORT, *, save_dir=".", threads: int = 1):
    """A started (not yet looping) Bokeh server for the explorer, and its URL."""
    check_extra()
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from simulator.app.view import make_document

    port = port or free_port()
    save_dir = Path(save_dir).resolve()
    app = Application(FunctionHandler(
        lambda doc: make_document(doc, save_dir=save_dir, threads=threads)))
    try:
        server = Server({"/": app}, port=port, address=ADDRESS,
                        allow_websocket_origin=[f"{ADDRESS}:{port}", f"localhost:{port}"])
    except OSError as exc:
        raise ScenarioError(f"cannot listen on {ADDRESS}:{port} ({exc.strerror or exc}); "
                            "choose another with --port", source="explore") from None
    server.start()
    return server, f"http://{ADDRESS}:{port}/"


def compile_lessons(stream=sys.stderr) -> None:
    """Compile the lessons' kernels before serving, on several processes
    (``study.precompile``), saying so: on a fresh install the first lesson would otherwise
    sit for ~40 s compiling one kernel after another with nothing on screen."""
    from simulator import engine
    from simulator.app.lessons import LESSONS
    from simulator.scenario import library_dir, load
    from simulator.study.precompile import compile_ahead_for
    scenarios = [load(library_dir() / name) for lesson in LESSONS
                 for name in (lesson.arm_a, lesson.arm_b) if name]
    engine.announce_compilation(*scenarios, stream=stream, command="tumorsim explore")
    compile_ahead_for(scenarios)


def serve(port: int = DEFAULT_PORT, *, open_browser: bool = False, save_dir=".",
          threads: int = 1) -> int:
    """Run the explorer until Ctrl-C."""
    check_extra()
    compile_lessons()
    server, url = make_server(port, save_dir=save_dir, threads=threads)
    print(f"tumorsim explore: {url}  (saves to {Path(save_dir).resolve()}; Ctrl-C stops)",
          flush=True)
    if open_browser:
        server.io_loop.add_callback(server.show, "/")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("tumorsim explore: stopped", file=sys.stderr)
    finally:
        server.stop()
    return 0
