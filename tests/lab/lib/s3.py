"""The s3 lab scenario's side of the S3 API (boto3 against moto's server).

s3.py ENDPOINT BUCKET setup TREE_S3_DIR KEYS_DIR
    The bucket (object lock on, the GENERATED bucket-settings.json applied), two IAM
    users with the GENERATED database-side and backup-side policies, their keys written
    root-only (0600) in AWS credentials-file form, an admin user; then IAM enforcement on.
s3.py ENDPOINT BUCKET wal-key|manifest-key PREFIX          (as the admin)
s3.py ENDPOINT BUCKET delete|put KEY CREDENTIALS_FILE      a raw delete / overwrite
s3.py ENDPOINT BUCKET delete-version KEY CREDENTIALS_FILE|admin
s3.py ENDPOINT BUCKET overwrite-keeps-version KEY CREDENTIALS_FILE
s3.py ENDPOINT BUCKET set-user-policy USER POLICY_FILE|allow-all
A denial prints the S3 error code (AccessDenied) and exits 1. The admin's key file is
$PGBR_S3_ADMIN.
"""
import json
import os
import re
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError

endpoint, bucket, action = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]


def client(service, key_id="admin", secret="admin"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def from_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    return values["aws_access_key_id"], values["aws_secret_access_key"]


def s3_as(who):
    return client("s3", *from_file(os.environ["PGBR_S3_ADMIN"] if who == "admin" else who))


def write_key(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                % (key["AccessKeyId"], key["SecretAccessKey"]))
    os.chmod(path, 0o600)


def setup(tree, keys):
    s3 = client("s3")
    iam = client("iam")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    with open(os.path.join(tree, "bucket-settings.json")) as f:
        settings = json.load(f)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=settings["VersioningConfiguration"])
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=settings["ObjectLockConfiguration"])
    for side in ("database", "backup"):
        user = "lab-%s-side" % side
        iam.create_user(UserName=user)
        with open(os.path.join(tree, "%s-side-iam-policy.json" % side)) as f:
            iam.put_user_policy(UserName=user, PolicyName="pgbr", PolicyDocument=f.read())
        write_key(os.path.join(keys, "%s.key" % side), iam.create_access_key(UserName=user)["AccessKey"])
    iam.create_user(UserName="lab-admin")
    iam.put_user_policy(UserName="lab-admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    write_key(os.path.join(keys, "admin.key"), iam.create_access_key(UserName="lab-admin")["AccessKey"])
    # IAM enforcement on from now (facts.md §9).
    req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0",
                                 headers={"Content-Type": "text/plain"}, method="POST")
    urllib.request.urlopen(req).read()


def denied(call):
    try:
        call()
    except ClientError as e:
        print(e.response["Error"]["Code"], e.response["Error"].get("Message", ""))
        sys.exit(1)
    print("allowed")


if action == "setup":
    setup(*args)
elif action in ("wal-key", "manifest-key"):
    pattern = re.compile(r"/[0-9A-F]{24}-[0-9a-f]{40}" if action == "wal-key" else r"/backup\.manifest$")
    pages = s3_as("admin").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args[0])
    print(next(o["Key"] for p in pages for o in p.get("Contents", []) if pattern.search(o["Key"])))
elif action == "delete":
    s3 = s3_as(args[1])
    denied(lambda: s3.delete_object(Bucket=bucket, Key=args[0]))
elif action == "put":
    s3 = s3_as(args[1])
    denied(lambda: s3.put_object(Bucket=bucket, Key=args[0], Body=b"ransomware"))
elif action == "delete-version":
    admin = s3_as("admin")
    versions = [v for v in admin.list_object_versions(Bucket=bucket, Prefix=args[0])["Versions"] if v["Key"] == args[0]]
    version = versions[-1]["VersionId"]
    head = admin.head_object(Bucket=bucket, Key=args[0], VersionId=version)
    print("version", version, "lock", head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"))
    s3 = s3_as(args[1])
    denied(lambda: s3.delete_object(Bucket=bucket, Key=args[0], VersionId=version))
elif action == "overwrite-keeps-version":
    admin = s3_as("admin")
    original = admin.get_object(Bucket=bucket, Key=args[0])["Body"].read()
    s3_as(args[1]).put_object(Bucket=bucket, Key=args[0], Body=b"overwritten")
    versions = admin.list_object_versions(Bucket=bucket, Prefix=args[0])["Versions"]
    old = [v for v in versions if not v["IsLatest"]]
    kept = admin.get_object(Bucket=bucket, Key=args[0], VersionId=old[0]["VersionId"])["Body"].read()
    assert kept == original, "the original WAL version is gone"
    # The original back as the latest version, so that restores read it.
    admin.put_object(Bucket=bucket, Key=args[0], Body=original)
    print("overwrite allowed (Put on WAL paths), the original kept as version", old[0]["VersionId"])
elif action == "set-user-policy":
    # set-user-policy USER FILE|allow-all: replace the IAM user's policy (as the admin).
    iam = client("iam", *from_file(os.environ["PGBR_S3_ADMIN"]))
    if args[1] == "allow-all":
        document = json.dumps({"Version": "2012-10-17",
                               "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    else:
        with open(args[1]) as f:
            document = f.read()
    iam.put_user_policy(UserName=args[0], PolicyName="pgbr", PolicyDocument=document)
else:
    sys.exit("unknown action " + action)
