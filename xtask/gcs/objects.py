"""The GCS emulator's objects, through google-cloud-storage (which honours STORAGE_EMULATOR_HOST).

  seed                      creates bucket wb-gcs: images/{a.jpg,sub/b.jpg,sub/deep/c.txt,zero.bin}, images2/x.jpg
  put <key> <text>          overwrites one object of wb-gcs
Prints one JSON line: {key: [etag, generation]} of every object after the command.
"""
import json
import sys

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

client = storage.Client(project="test", credentials=AnonymousCredentials())
command, args = sys.argv[1], sys.argv[2:]
if command == "seed":
    bucket = client.create_bucket("wb-gcs")
    for key, body in [("images/a.jpg", b"AAAA image a\n"), ("images/sub/b.jpg", b"BBBB image b\n"),
                      ("images/sub/deep/c.txt", b"deep c\n"), ("images/zero.bin", b""),
                      ("images2/x.jpg", b"sibling x\n")]:
        bucket.blob(key).upload_from_string(body)
elif command == "put":
    key, text = args
    client.bucket("wb-gcs").blob(key).upload_from_string(text.encode())
else:
    raise SystemExit(f"unknown command {command}")
print(json.dumps({b.name: [b.etag, b.generation] for b in client.list_blobs("wb-gcs")}))
