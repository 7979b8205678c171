"""What the tools share: one Toolbox, its model lock, and the confined image-source policy."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from arpo.server.jobs import model_lock
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
        self.lock = model_lock(toolbox)

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
        """Load the models in a background thread (holding the model lock)."""

        def load() -> None:
            try:
                with self.lock:
                    self.toolbox.load_models()
            except Exception as error:  # reported again, clearly, by the first tool call
                log.warning("warm-up failed: %s", error)

        thread = threading.Thread(target=load, name="arpo-warm-up", daemon=True)
        thread.start()
        return thread
