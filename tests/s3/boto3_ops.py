"""Every S3 operation cairn serves, through boto3 (run by tests/s3.rs).

Environment: S3_URL, ADMIN (ID:SECRET), READER (ID:SECRET of a read-only key).
Exits non-zero with the failing check's message.
"""
import base64
import datetime
import hashlib
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["S3_URL"]


def client(pair, **cfg):
    key, secret = pair.split(":", 1)
    return boto3.client(
        "s3",
        endpoint_url=URL,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **cfg),
    )


s3 = client(os.environ["ADMIN"])
reader = client(os.environ["READER"])


def code_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def expect_code(want, fn, *args, **kw):
    got = code_of(fn, *args, **kw)
    check(got == want, f"{fn.__name__}: expected {want}, got {got}")


# Buckets.
s3.create_bucket(Bucket="alpha")
s3.create_bucket(Bucket="beta")
expect_code("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket="alpha")
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
check({"alpha", "beta"} <= set(names), f"list_buckets: {names}")
s3.head_bucket(Bucket="alpha")
expect_code("404", s3.head_bucket, Bucket="nope")
s3.get_bucket_location(Bucket="alpha")
expect_code("NoSuchBucket", s3.get_object, Bucket="nope", Key="x")
expect_code("NoSuchBucket", s3.put_object, Bucket="nope", Key="x", Body=b"x")

# Objects, metadata, standard headers.
body = b"hello, cairn\n"
r = s3.put_object(Bucket="alpha", Key="docs/hello.txt", Body=body, ContentType="text/plain",
                  CacheControl="max-age=60", Metadata={"owner": "ada", "Mixed-Case": "v"})
check(r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), f"ETag is the MD5: {r['ETag']}")
g = s3.get_object(Bucket="alpha", Key="docs/hello.txt")
check(g["Body"].read() == body, "get returns the bytes")
check(g["ContentType"] == "text/plain", f"content type kept: {g['ContentType']}")
check(g["CacheControl"] == "max-age=60", "cache-control kept")
check(g["Metadata"] == {"owner": "ada", "mixed-case": "v"}, f"user metadata kept: {g['Metadata']}")
h = s3.head_object(Bucket="alpha", Key="docs/hello.txt")
check(h["ContentLength"] == len(body) and h["ETag"] == r["ETag"], "head agrees")
expect_code("NoSuchKey", s3.get_object, Bucket="alpha", Key="docs/missing")
expect_code("404", s3.head_object, Bucket="alpha", Key="docs/missing")
expect_code("InvalidArgument", s3.put_object, Bucket="alpha", Key="a//b", Body=b"x")
expect_code("InvalidArgument", s3.put_object, Bucket="alpha", Key="a/../b", Body=b"x")

# Ranges.
part = s3.get_object(Bucket="alpha", Key="docs/hello.txt", Range="bytes=7-11")
check(part["Body"].read() == b"cairn", "range read")
check(part["ContentRange"] == f"bytes 7-11/{len(body)}", f"content range {part['ContentRange']}")
check(s3.get_object(Bucket="alpha", Key="docs/hello.txt", Range="bytes=-3")["Body"].read() == b"rn\n", "suffix range")
expect_code("InvalidRange", s3.get_object, Bucket="alpha", Key="docs/hello.txt", Range="bytes=100-200")

# Conditional reads and writes.
etag = r["ETag"]
expect_code("304", s3.get_object, Bucket="alpha", Key="docs/hello.txt", IfNoneMatch=etag)
expect_code("PreconditionFailed", s3.get_object, Bucket="alpha", Key="docs/hello.txt", IfMatch='"0000"')
s3.get_object(Bucket="alpha", Key="docs/hello.txt", IfMatch=etag)
expect_code("304", s3.head_object, Bucket="alpha", Key="docs/hello.txt",
            IfModifiedSince=h["LastModified"])
expect_code("PreconditionFailed", s3.put_object, Bucket="alpha", Key="docs/hello.txt", Body=b"x", IfNoneMatch="*")
s3.put_object(Bucket="alpha", Key="docs/new.txt", Body=b"new", IfNoneMatch="*")
expect_code("PreconditionFailed", s3.put_object, Bucket="alpha", Key="docs/new.txt", Body=b"y", IfMatch='"0000"')
s3.put_object(Bucket="alpha", Key="docs/new.txt", Body=b"newer",
              IfMatch='"%s"' % hashlib.md5(b"new").hexdigest())
check(s3.get_object(Bucket="alpha", Key="docs/new.txt")["Body"].read() == b"newer", "If-Match write")

# Checksums: each algorithm, sent by the SDK in aws-chunked form with a trailer.
data = os.urandom(300_000)
for alg in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
    key = f"sums/{alg}"
    put = s3.put_object(Bucket="alpha", Key=key, Body=data, ChecksumAlgorithm=alg)
    sent = put.get(f"Checksum{alg}")
    check(sent, f"{alg}: the put answer carries the checksum: {put}")
    got = s3.get_object(Bucket="alpha", Key=key, ChecksumMode="ENABLED")
    check(got["Body"].read() == data, f"{alg}: the bytes, without chunk framing")
    check(got.get(f"Checksum{alg}") == sent, f"{alg}: the checksum comes back")
crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
check(s3.head_object(Bucket="alpha", Key="sums/CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc, "CRC32 value")
wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
expect_code("BadDigest", s3.put_object, Bucket="alpha", Key="sums/bad", Body=data, ChecksumCRC32=wrong)
check(code_of(s3.head_object, Bucket="alpha", Key="sums/bad") == "404", "a refused upload leaves nothing")

# A key that is an object and a prefix.
s3.put_object(Bucket="alpha", Key="both", Body=b"object")
s3.put_object(Bucket="alpha", Key="both/inner", Body=b"inner")
check(s3.get_object(Bucket="alpha", Key="both")["Body"].read() == b"object", "object beside its prefix")
check(s3.get_object(Bucket="alpha", Key="both/inner")["Body"].read() == b"inner", "key below an object")
s3.put_object(Bucket="alpha", Key="both", Body=b"object v2")
check(s3.get_object(Bucket="alpha", Key="both")["Body"].read() == b"object v2", "an object over its own prefix")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="both")["Contents"]]
check(keys == ["both", "both/inner"], f"both listed in order: {keys}")
s3.delete_object(Bucket="alpha", Key="both/inner")
check(s3.get_object(Bucket="alpha", Key="both")["Body"].read() == b"object v2", "the object stays")

# Listing: order, prefixes, delimiters, pages.
for k in ["l/a", "l/a-b", "l/a/x", "l/a/y/z", "l/b", "l/c d", "l/é"]:
    s3.put_object(Bucket="alpha", Key=k, Body=k.encode())
all_keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="l/")["Contents"]]
check(all_keys == sorted(all_keys, key=lambda k: k.encode()), f"S3 key order: {all_keys}")
check(all_keys == ["l/a", "l/a-b", "l/a/x", "l/a/y/z", "l/b", "l/c d", "l/é"], f"keys: {all_keys}")
d = s3.list_objects_v2(Bucket="alpha", Prefix="l/", Delimiter="/")
check([o["Key"] for o in d["Contents"]] == ["l/a", "l/a-b", "l/b", "l/c d", "l/é"], f"delimited: {d}")
check([p["Prefix"] for p in d["CommonPrefixes"]] == ["l/a/"], f"common prefixes: {d.get('CommonPrefixes')}")
pages, token = [], None
while True:
    kw = {"ContinuationToken": token} if token else {}
    p = s3.list_objects_v2(Bucket="alpha", Prefix="l/", MaxKeys=2, **kw)
    pages.append([o["Key"] for o in p.get("Contents", [])])
    if not p["IsTruncated"]:
        break
    token = p["NextContinuationToken"]
check(sum(pages, []) == all_keys and len(pages) == 4, f"pages: {pages}")
after = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="l/", StartAfter="l/a-b")["Contents"]]
check(after == all_keys[2:], f"start-after: {after}")
v1 = s3.list_objects(Bucket="alpha", Prefix="l/", Marker="l/a/x", MaxKeys=2)
check([o["Key"] for o in v1["Contents"]] == ["l/a/y/z", "l/b"] and v1["IsTruncated"], f"v1: {v1}")
enc = s3.list_objects_v2(Bucket="alpha", Prefix="l/c", EncodingType="url")
raw = [o["Key"] for o in enc["Contents"]]
check([urllib.parse.unquote_plus(k) for k in raw] == ["l/c d"] and " " not in raw[0], f"encoding-type=url: {raw}")
paginator = s3.get_paginator("list_objects_v2")
n = sum(len(p.get("Contents", [])) for p in paginator.paginate(Bucket="alpha", Prefix="l/", PaginationConfig={"PageSize": 3}))
check(n == len(all_keys), "paginator")

# Copies: within and between buckets, with the metadata directive.
c = s3.copy_object(Bucket="beta", Key="copied", CopySource={"Bucket": "alpha", "Key": "docs/hello.txt"})
check(c["CopyObjectResult"]["ETag"] == etag, "a copy keeps the ETag")
g = s3.get_object(Bucket="beta", Key="copied")
check(g["Body"].read() == body and g["Metadata"]["owner"] == "ada", "COPY keeps metadata")
s3.copy_object(Bucket="alpha", Key="docs/hello.txt", CopySource={"Bucket": "alpha", "Key": "docs/hello.txt"},
               MetadataDirective="REPLACE", Metadata={"owner": "grace"}, ContentType="text/markdown")
g = s3.head_object(Bucket="alpha", Key="docs/hello.txt")
check(g["Metadata"] == {"owner": "grace"} and g["ContentType"] == "text/markdown", f"REPLACE: {g}")
expect_code("NoSuchKey", s3.copy_object, Bucket="beta", Key="x", CopySource={"Bucket": "alpha", "Key": "nope"})

# Tags: with the PUT, on their own, replaced by a copy.
s3.put_object(Bucket="alpha", Key="tagged", Body=b"t", Tagging="colour=blue&size=big%20one")
check(s3.get_object(Bucket="alpha", Key="tagged")["TagCount"] == 2, "tag count on GET")
tags = s3.get_object_tagging(Bucket="alpha", Key="tagged")["TagSet"]
check(sorted((t["Key"], t["Value"]) for t in tags) == [("colour", "blue"), ("size", "big one")], f"tags: {tags}")
s3.put_object_tagging(Bucket="alpha", Key="tagged", Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
check(s3.get_object_tagging(Bucket="alpha", Key="tagged")["TagSet"] == [{"Key": "only", "Value": "one"}], "replaced")
too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
expect_code("InvalidTag", s3.put_object_tagging, Bucket="alpha", Key="tagged", Tagging={"TagSet": too_many})
s3.copy_object(Bucket="alpha", Key="tagged-copy", CopySource={"Bucket": "alpha", "Key": "tagged"},
               TaggingDirective="REPLACE", Tagging="new=tag")
check(s3.get_object_tagging(Bucket="alpha", Key="tagged-copy")["TagSet"] == [{"Key": "new", "Value": "tag"}], "copy")
s3.delete_object_tagging(Bucket="alpha", Key="tagged")
check(s3.get_object_tagging(Bucket="alpha", Key="tagged")["TagSet"] == [], "tags deleted")
check(s3.get_object(Bucket="alpha", Key="tagged")["Body"].read() == b"t", "the bytes stay")
expect_code("NoSuchKey", s3.get_object_tagging, Bucket="alpha", Key="untagged-missing")

# Deletes.
s3.delete_object(Bucket="alpha", Key="docs/new.txt")
s3.delete_object(Bucket="alpha", Key="docs/never-was")
r = s3.delete_objects(Bucket="alpha", Delete={"Objects": [{"Key": "l/a"}, {"Key": "l/b"}, {"Key": "a//b"}]})
check(sorted(d["Key"] for d in r["Deleted"]) == ["l/a", "l/b"], f"delete_objects: {r}")
check([e["Key"] for e in r.get("Errors", [])] == ["a//b"], f"delete_objects errors: {r}")
expect_code("BucketNotEmpty", s3.delete_bucket, Bucket="beta")
s3.delete_object(Bucket="beta", Key="copied")
s3.delete_bucket(Bucket="beta")
expect_code("404", s3.head_bucket, Bucket="beta")

# Multipart: 5 MiB parts, a copied part, listings, completion by concatenation.
MiB = 1 << 20
p1, p2 = os.urandom(5 * MiB), os.urandom(5 * MiB + 123)
up = s3.create_multipart_upload(Bucket="alpha", Key="mp/big.bin", ContentType="application/x-test",
                                Metadata={"kind": "multipart"})
uid = up["UploadId"]
e1 = s3.upload_part(Bucket="alpha", Key="mp/big.bin", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part(Bucket="alpha", Key="mp/big.bin", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
e3 = s3.upload_part_copy(Bucket="alpha", Key="mp/big.bin", UploadId=uid, PartNumber=3,
                         CopySource={"Bucket": "alpha", "Key": "docs/hello.txt"},
                         CopySourceRange="bytes=0-4")["CopyPartResult"]["ETag"]
parts = s3.list_parts(Bucket="alpha", Key="mp/big.bin", UploadId=uid)["Parts"]
check([(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 5 * MiB + 123), (3, 5)], f"parts: {parts}")
ups = s3.list_multipart_uploads(Bucket="alpha")["Uploads"]
check([(u["Key"], u["UploadId"]) for u in ups] == [("mp/big.bin", uid)], f"uploads: {ups}")
expect_code("InvalidPart", s3.complete_multipart_upload, Bucket="alpha", Key="mp/big.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e2}]})
expect_code("InvalidPartOrder", s3.complete_multipart_upload, Bucket="alpha", Key="mp/big.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
done = s3.complete_multipart_upload(
    Bucket="alpha", Key="mp/big.bin", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                               {"PartNumber": 3, "ETag": e3}]})
md5s = b"".join(bytes.fromhex(e.strip('"')) for e in [e1, e2, e3])
check(done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest(), f"multipart ETag: {done['ETag']}")
g = s3.get_object(Bucket="alpha", Key="mp/big.bin")
check(g["Body"].read() == p1 + p2 + b"hello", "multipart bytes")
check(g["ContentType"] == "application/x-test" and g["Metadata"] == {"kind": "multipart"}, "multipart metadata")
check(s3.list_multipart_uploads(Bucket="alpha").get("Uploads", []) == [], "no upload left")
expect_code("NoSuchUpload", s3.list_parts, Bucket="alpha", Key="mp/big.bin", UploadId=uid)
small = s3.create_multipart_upload(Bucket="alpha", Key="mp/small")["UploadId"]
s1 = s3.upload_part(Bucket="alpha", Key="mp/small", UploadId=small, PartNumber=1, Body=b"tiny")["ETag"]
s2 = s3.upload_part(Bucket="alpha", Key="mp/small", UploadId=small, PartNumber=2, Body=b"tail")["ETag"]
expect_code("EntityTooSmall", s3.complete_multipart_upload, Bucket="alpha", Key="mp/small", UploadId=small,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]})
s3.abort_multipart_upload(Bucket="alpha", Key="mp/small", UploadId=small)
expect_code("NoSuchUpload", s3.abort_multipart_upload, Bucket="alpha", Key="mp/small", UploadId=small)
cond = s3.create_multipart_upload(Bucket="alpha", Key="mp/big.bin")["UploadId"]
c1 = s3.upload_part(Bucket="alpha", Key="mp/big.bin", UploadId=cond, PartNumber=1, Body=b"x")["ETag"]
expect_code("PreconditionFailed", s3.complete_multipart_upload, Bucket="alpha", Key="mp/big.bin", UploadId=cond,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c1}]}, IfNoneMatch="*")
s3.abort_multipart_upload(Bucket="alpha", Key="mp/big.bin", UploadId=cond)

# Multipart checksums: a CRC of the whole object combined from the parts', and a composite SHA256.
for alg, kind in [("CRC32", "FULL_OBJECT"), ("CRC64NVME", "FULL_OBJECT"), ("SHA256", "COMPOSITE")]:
    key = f"mp/sum-{alg}"
    uid = s3.create_multipart_upload(Bucket="alpha", Key=key, ChecksumAlgorithm=alg, ChecksumType=kind)["UploadId"]
    done_parts = []
    for n, piece in [(1, p1), (2, b"last part")]:
        r = s3.upload_part(Bucket="alpha", Key=key, UploadId=uid, PartNumber=n, Body=piece, ChecksumAlgorithm=alg)
        done_parts.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    done = s3.complete_multipart_upload(Bucket="alpha", Key=key, UploadId=uid, ChecksumType=kind,
                                        MultipartUpload={"Parts": done_parts})
    h = s3.head_object(Bucket="alpha", Key=key, ChecksumMode="ENABLED")
    check(h.get("ChecksumType") == kind and h.get(f"Checksum{alg}") == done.get(f"Checksum{alg}"), f"{alg}: {h}")
    if alg == "CRC32":
        whole = base64.b64encode(zlib.crc32(p1 + b"last part").to_bytes(4, "big")).decode()
        check(h["ChecksumCRC32"] == whole, f"the whole object's CRC32: {h['ChecksumCRC32']} vs {whole}")
    if kind == "COMPOSITE":
        check(h[f"Checksum{alg}"].endswith("-2"), f"a composite checksum names its parts: {h}")

# Versioning on the file history: versions, delete markers, GET and DELETE by version id.
s3.create_bucket(Bucket="ver")
check("Status" not in s3.get_bucket_versioning(Bucket="ver"), "versioning is off by default")
s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Enabled"})
check(s3.get_bucket_versioning(Bucket="ver")["Status"] == "Enabled", "enabled")
v1 = s3.put_object(Bucket="ver", Key="d/doc", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket="ver", Key="d/doc", Body=b"two")["VersionId"]
check(v1 != v2, "each PUT makes a version")
check(s3.get_object(Bucket="ver", Key="d/doc")["Body"].read() == b"two", "the latest")
old = s3.get_object(Bucket="ver", Key="d/doc", VersionId=v1)
check(old["Body"].read() == b"one" and old["VersionId"] == v1, "an earlier version by id")
lv = s3.list_object_versions(Bucket="ver")
check([(v["Key"], v["VersionId"], v["IsLatest"]) for v in lv["Versions"]] == [("d/doc", v2, True), ("d/doc", v1, False)],
      f"versions: {lv['Versions']}")
gone = s3.delete_object(Bucket="ver", Key="d/doc")
check(gone.get("DeleteMarker") is True and gone.get("VersionId"), f"a delete marker: {gone}")
expect_code("NoSuchKey", s3.get_object, Bucket="ver", Key="d/doc")
lv = s3.list_object_versions(Bucket="ver", Prefix="d/")
marks = [(m["Key"], m["VersionId"], m["IsLatest"]) for m in lv.get("DeleteMarkers", [])]
check(marks == [("d/doc", gone["VersionId"], True)], f"markers: {lv}")
check([v["IsLatest"] for v in lv["Versions"]] == [False, False], "no version is latest under a marker")
check(s3.get_object(Bucket="ver", Key="d/doc", VersionId=v1)["Body"].read() == b"one", "history survives a delete")
expect_code("MethodNotAllowed", s3.get_object, Bucket="ver", Key="d/doc", VersionId=gone["VersionId"])
s3.delete_object(Bucket="ver", Key="d/doc", VersionId=gone["VersionId"])
check(s3.get_object(Bucket="ver", Key="d/doc")["Body"].read() == b"two", "removing the marker brings it back")
s3.delete_object(Bucket="ver", Key="d/doc", VersionId=v1)
expect_code("NoSuchVersion", s3.get_object, Bucket="ver", Key="d/doc", VersionId=v1)
expect_code("NoSuchVersion", s3.delete_object, Bucket="ver", Key="d/doc", VersionId="999999")
expect_code("InvalidArgument", s3.get_object, Bucket="ver", Key="d/doc", VersionId="not-a-version")
s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Suspended"})
check(s3.get_bucket_versioning(Bucket="ver")["Status"] == "Suspended", "suspended")

# Auth: wrong secret, unknown key, a key without write rights, unsigned requests, presigned URLs.
admin_id = os.environ["ADMIN"].split(":")[0]
expect_code("SignatureDoesNotMatch", client(admin_id + ":wrong-secret").list_buckets)
expect_code("InvalidAccessKeyId", client("CKAAAAAAAAAAAAAAAAAA:whatever").list_buckets)
check(reader.get_object(Bucket="alpha", Key="docs/hello.txt")["Body"].read() == body, "a reader reads")
expect_code("AccessDenied", reader.put_object, Bucket="alpha", Key="x", Body=b"x")
expect_code("AccessDenied", reader.delete_object, Bucket="alpha", Key="docs/hello.txt")
try:
    urllib.request.urlopen(f"{URL}/alpha/docs/hello.txt")
    check(False, "an unsigned GET was served")
except urllib.error.HTTPError as e:
    check(e.code == 403, f"unsigned GET: {e.code}")
v4 = client(os.environ["ADMIN"], signature_version="s3v4")
signed = v4.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "docs/hello.txt"}, ExpiresIn=300)
check(urllib.request.urlopen(signed).read() == body, "presigned GET")
put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "alpha", "Key": "presigned"}, ExpiresIn=300)
urllib.request.urlopen(urllib.request.Request(put_url, data=b"via url", method="PUT"))
check(s3.get_object(Bucket="alpha", Key="presigned")["Body"].read() == b"via url", "presigned PUT")
# A key limited to one bucket sees and writes that bucket only.
scoped = client(os.environ["SCOPED"])
check([b["Name"] for b in scoped.list_buckets()["Buckets"]] == ["alpha"], "a scoped key lists its bucket only")
scoped.put_object(Bucket="alpha", Key="scoped.txt", Body=b"mine")
expect_code("AccessDenied", scoped.put_object, Bucket="ver", Key="x", Body=b"x")
expect_code("AccessDenied", scoped.get_object, Bucket="ver", Key="d/doc")
expect_code("AccessDenied", scoped.copy_object, Bucket="alpha", Key="stolen", CopySource={"Bucket": "ver", "Key": "d/doc"})
expect_code("PreconditionFailed", s3.get_object, Bucket="alpha", Key="docs/hello.txt",
            IfUnmodifiedSince=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc))
print("boto3: all checks passed")
