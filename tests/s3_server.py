"""A real S3-compatible server for tests: moto's S3 server, in a thread of the test process
on a free 127.0.0.1 port (it answers the emoforge processes a test starts too).

``s3_server()`` puts fake credentials and the server's URL (``AWS_ENDPOINT_URL``) in the
environment for its block, where botocore (s3fs, the CLI) reads them as it would a real
bucket's; nothing in a config names them. Other test folders import it for their fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

# moto accepts any key pair; these make botocore sign requests instead of looking for a
# real account's credentials (config files, instance metadata).
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "emoforge-test",
    "AWS_SECRET_ACCESS_KEY": "emoforge-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server, with its URL and fake credentials in ``os.environ`` for the block.

    Yields:
        The endpoint URL (``http://127.0.0.1:PORT``).
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in {**FAKE_AWS, "AWS_ENDPOINT_URL": endpoint}.items():
                env.setenv(key, value)
            yield endpoint
    finally:
        # fsspec keeps one S3FileSystem per set of arguments: a later server (another port)
        # must not be reached through this one's client.
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()
