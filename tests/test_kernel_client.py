"""The runner's kernel client: ready once the kernel answers, with nothing stale left on IOPub."""

from queue import Empty

import pytest
from jupyter_core.utils import run_sync

from runbook_lib.kernel_client import ReadyClient
from runbook_lib.kernels import PrivateKernel


@pytest.fixture
def kernel():
    kernel = PrivateKernel("python3", None)
    kernel.start()
    yield kernel
    kernel.close()


def test_a_private_kernels_client_is_ready_and_iopub_holds_nothing_of_before(kernel):
    client = kernel.manager.client()
    assert isinstance(client, ReadyClient)
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=60)
        assert client.shell_channel.is_alive() and client.iopub_channel.is_alive()
        with pytest.raises(Empty):  # kernel_info's busy/idle were drained: a cell's outputs come next
            run_sync(client.iopub_channel.get_msg)(timeout=0.5)
        msg_id = client.execute("print('mine')")
        outputs = []
        while True:
            msg = run_sync(client.iopub_channel.get_msg)(timeout=30)
            assert msg["parent_header"].get("msg_id") == msg_id  # nothing left from the readiness check
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert outputs == ["mine\n"]
    finally:
        client.stop_channels()


def test_a_kernel_that_died_is_an_error_not_a_wait(kernel):
    client = kernel.manager.client()
    client.start_channels()
    try:
        kernel.manager.provisioner.process.kill()
        kernel.manager.provisioner.process.wait()
        with pytest.raises(RuntimeError, match="Kernel died before replying to kernel_info"):
            run_sync(client.wait_for_ready)(timeout=60)
    finally:
        client.stop_channels()


def test_a_kernel_that_never_answers_times_out():
    kernel = PrivateKernel("python3", None)
    kernel.manager.write_connection_file()  # sockets named, no kernel behind them: no reply ever comes
    client = kernel.manager.client()
    client.start_channels()
    try:
        kernel.manager._async_is_alive = _alive  # what the client asks; else: no kernel, nothing to wait for
        with pytest.raises(RuntimeError, match="Kernel didn't respond in 2 seconds"):
            run_sync(client.wait_for_ready)(timeout=2)
    finally:
        client.stop_channels()
        kernel.close()


async def _alive() -> bool:
    return True
