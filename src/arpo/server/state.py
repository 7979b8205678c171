"""What the tools share: one Toolbox, its model lock, and the confined image-source policy."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from arpo.server.jobs import Job, failure_text, model_loading
from arpo.tools.sources import SourcePolicy, policy_from_settings, resolve_image

if TYPE_CHECKING:
    from PIL import Image

    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)


class ServerState:
    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.settings = toolbox.settings
        self.policy: SourcePolicy = policy_from_settings(self.settings)
        self.loading = model_loading(toolbox)
        self.lock = self.loading.lock

    def job(self) -> Job:
        """A request's worker side, which hears what the warm-up loads while it waits, and
        what it loads itself."""
        return Job(self.lock, self.loading, self.toolbox)

    def image(self, source: str) -> Image.Image:
        """The image a caller's argument names, through the one resolver, confined to the
        server's roots: the only way a tool argument becomes pixels."""
        return resolve_image(source, self.policy, self.toolbox.store)

    def remix_source(self, source: str) -> Any:
        """A remix source as the api takes it: a run id or prompt stays text; anything that
        names an image is resolved here (confined), so the api never opens a caller's path."""
        from arpo.api.remix import source_kind

        return self.image(source) if source_kind(source) == "image" else source.strip()

    def warm_up(self) -> threading.Thread:
        """Load the models in the background: :func:`start_warm_up`."""
        return start_warm_up(self.toolbox)


def start_warm_up(toolbox: Toolbox) -> threading.Thread:
    """Load ``toolbox``'s models in a background thread, holding the model lock; requests that
    wait for them hear what loads (:class:`~arpo.server.jobs.ModelLoading`). Without an LLM
    the phrase vocabulary is embedded too (interrogation and the offline strategy need it),
    pausing between chunks for any request that waits. A failure is logged, and the first tool
    call says so, then tries again, failing with the same words the CLI prints."""
    loading = model_loading(toolbox)
    loading.done.clear()
    first = "starting"
    started = loading.begin(first)
    log.warning(
        "arpo serve: loading the models in the background (--no-warm-up: on the first call instead)"
    )

    def load() -> None:
        while not started and not loading.begin(first):
            time.sleep(0.1)
        began = time.perf_counter()
        error: BaseException | None = None
        try:
            toolbox.load_models(on_progress=loading.say)
            if not toolbox.llm_available:
                toolbox.embed_vocabulary(on_progress=loading.step)
        except Exception as failure:  # reported again by the first tool call
            error = failure
            log.warning("arpo serve: loading the models failed: %s", failure_text(failure))
            log.debug("warm-up failure", exc_info=True)
        else:
            log.warning("arpo serve: models loaded in %.1f s", time.perf_counter() - began)
        finally:
            loading.end(error)

    thread = threading.Thread(target=load, name="arpo-warm-up", daemon=True)
    thread.start()
    return thread
