"""`cargo xtask bench s3-prefix`: moto (the same pinned emulator as `cargo xtask s3`) serving one bucket, `bench`,
whose prefix `prefix/` holds N small objects in 1,000-object directories.

The objects go in through moto's own backend, in this process: 100,000 PUTs over HTTP would take minutes and are
not what is measured. The listing and the HEADs under test go over HTTP as usual. Prints "ready" once filled,
then serves until its standard input closes.

usage: bench_server.py PORT N
"""
import logging
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.s3.models import s3_backends

port, count = int(sys.argv[1]), int(sys.argv[2])
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request would swamp the report
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
backend.create_bucket("bench", "us-east-1")
for i in range(count):
    backend.put_object("bench", f"prefix/{i // 1000:04d}/{i:07d}.bin", b"object %d\n" % i)
print("ready", flush=True)
sys.stdin.read()
server.stop()
