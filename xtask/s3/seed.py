"""Fills a fresh moto server with the objects of shared/vectors/s3-references (README, "Objects used") and prints
the version ids moto gave the versioned bucket: {"data/v.txt": [old, latest], "data/w.txt": [latest]}."""
import json
import sys

import boto3

endpoint = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
s3.create_bucket(Bucket="wb-plain")
for key, body in [("single.txt", b"hello single\n"), ("empty.txt", b""), ("images/a.jpg", b"AAAA image a\n"),
                  ("images/sub/b.jpg", b"BBBB image b\n"), ("images/sub/deep/c.txt", b"deep c\n"),
                  ("images/zero.bin", b""), ("images2/x.jpg", b"sibling x\n"), ("dirobj/inner.txt", b"inner\n")]:
    s3.put_object(Bucket="wb-plain", Key=key, Body=body)
s3.put_object(Bucket="wb-plain", Key="dirobj", Body=b"", ContentType="application/x-directory")
upload = s3.create_multipart_upload(Bucket="wb-plain", Key="big.bin")
parts = []
for number, body in [(1, b"\x01" * (5 << 20)), (2, b"\x02" * 1024)]:
    part = s3.upload_part(Bucket="wb-plain", Key="big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=body)
    parts.append({"PartNumber": number, "ETag": part["ETag"]})
s3.complete_multipart_upload(Bucket="wb-plain", Key="big.bin", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": parts})

s3.create_bucket(Bucket="wb-ver")
s3.put_bucket_versioning(Bucket="wb-ver", VersioningConfiguration={"Status": "Enabled"})
versions = {"data/v.txt": [], "data/w.txt": []}
for key, body in [("data/v.txt", b"version one\n"), ("data/v.txt", b"version two!\n"), ("data/w.txt", b"w only\n")]:
    versions[key].append(s3.put_object(Bucket="wb-ver", Key=key, Body=body)["VersionId"])
print(json.dumps(versions))
