"""The client the runner executes notebooks through: ready as soon as the kernel is.

A new jupyter_client client counts as ready once the kernel answers ``kernel_info`` on the
shell channel and something arrives on IOPub (so its subscription is live); it then drains
IOPub until that has been quiet for 0.2 s, a fixed 0.2 s of every notebook's start. On the
kernel's private IPC sockets (:class:`runbook_lib.kernels.PrivateKernel`) a message in flight
arrives within milliseconds, and nbclient keeps only messages whose parent is a request of
its own anyway, so :class:`ReadyClient` drains until IOPub has been quiet for
:data:`IOPUB_QUIET_SECONDS`.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

#: How long IOPub must stay quiet before a new client has caught up with it.
IOPUB_QUIET_SECONDS = 0.02
#: How long to wait for IOPub after the ``kernel_info`` reply before asking again (not yet subscribed).
IOPUB_CONNECT_SECONDS = 0.2


class ReadyClient(AsyncKernelClient):
    """:class:`jupyter_client.asynchronous.AsyncKernelClient` with a short IOPub drain when it gets ready."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=IOPUB_CONNECT_SECONDS)
                except Empty:
                    pass  # IOPub not subscribed yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if deadline is not None and time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=IOPUB_QUIET_SECONDS)
            except Empty:
                return

    # AsyncKernelClient binds wait_for_ready to the base class's coroutine itself, not by name
    wait_for_ready = _async_wait_for_ready
