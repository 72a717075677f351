"""hello-py: an example wanLLMDB plugin written in Python.

It serves ``wanllmdb.hellopy.v1.TextService`` (proto/wanllmdb/hellopy/v1/
hellopy.proto) in its own process, and calls the kernel back twice:

- ``Analyze`` reads the project as the caller (with the call token), so the
  caller's own access decides what the plugin may see;
- ``Stats`` lists projects as the plugin itself (the permissions its
  manifest declares).

The kernel starts it (``wanllmdb serve --plugins <this folder>``); run by
hand it only says so.
"""

import collections
import logging
import os
import re
import threading
import time

import grpc

from wanllmdb_plugin import Kernel, KernelError, Plugin, abort, check_handshake, load_protos

STARTED_AT_MS = int(time.time() * 1000)  # near enough: before the contracts are compiled

check_handshake()  # before anything else: run by hand, say how to start it

(hellopy, hellopy_grpc), (projects, projects_grpc) = load_protos(
    "wanllmdb/hellopy/v1/hellopy.proto",
    "wanllmdb/projects/v1/projects.proto",
)

log = logging.getLogger("hello-py")

MAX_TEXT = 100_000
TOP_WORDS = 3
WORD = re.compile(r"[^\W_]+")  # runs of letters and digits


def top_words(words: list[str], n: int = TOP_WORDS) -> list[tuple[str, int]]:
    """The ``n`` most frequent words, by count descending then word ascending."""
    counts = collections.Counter(words)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


class TextService(hellopy_grpc.TextServiceServicer):
    """Greets projects and counts words; keeps its own call count."""

    def __init__(self, kernel: Kernel, greeting: str) -> None:
        self.kernel = kernel
        self.projects = kernel.stub(projects_grpc.ProjectServiceStub)
        self.greeting = greeting
        self._calls = 0
        self._lock = threading.Lock()

    def _count_call(self) -> int:
        """Count this call; return the total so far."""
        with self._lock:
            self._calls += 1
            return self._calls

    def Analyze(self, request, context):
        """Greet the project by name and count the words of the text."""
        self._count_call()
        if len(request.text) > MAX_TEXT:
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "WLDB_ERR_VALIDATION",
                f"The text is too long (at most {MAX_TEXT} characters). Send less.",
                [{"field": "text", "message": f"is longer than {MAX_TEXT} characters"}],
            )
        try:
            project = self.kernel.call(
                self.projects.GetProject,
                projects.GetProjectRequest(id=request.project_id),
                on_behalf_of=context,
            ).data
        except KernelError as error:
            error.abort(context)
        words = WORD.findall(request.text.lower())
        log.debug(
            "analyze",
            extra={"project_id": project.id, "words": len(words), "characters": len(request.text)},
        )
        return hellopy.AnalyzeResponse(
            greeting=f"{self.greeting}, {project.name}!",
            words=len(words),
            characters=len(request.text),
            top_words=[hellopy.WordCount(word=w, count=c) for w, c in top_words(words)],
        )

    def Stats(self, request, context):
        """The number of projects (as the plugin sees them) and the process' figures."""
        calls = self._count_call()
        try:
            listed = self.kernel.call(
                self.projects.ListProjects, projects.ListProjectsRequest(page=1, page_size=1)
            )
        except KernelError as error:
            error.abort(context)
        return hellopy.StatsResponse(
            projects_total=listed.meta.total,
            pid=os.getpid(),
            started_at_ms=STARTED_AT_MS,
            calls=calls,
        )


def main() -> int:
    """Serve TextService until the kernel stops the program."""
    service_name = hellopy.DESCRIPTOR.services_by_name["TextService"].full_name
    plugin = Plugin(service_names=[service_name])
    kernel = Kernel()
    greeting = os.environ.get("WANLLMDB_HELLO_PY_GREETING") or "Hello"
    hellopy_grpc.add_TextServiceServicer_to_server(TextService(kernel, greeting), plugin.server)
    plugin.start()
    log.info("hello-py serving", extra={"socket": plugin.socket_path})
    status = plugin.wait()
    kernel.close()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
